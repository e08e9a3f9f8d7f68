"""labkit.language: vocabularies, n-gram models from counts, and character-model
plumbing.

References: hand-computed probabilities on a three-sentence corpus, exact fractions,
Python's collections.Counter, torch's softmax and one_hot, and the defining property of
maximum likelihood.
"""

from collections import Counter
from fractions import Fraction
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from labkit.language import (
    NGramLM,
    Vocab,
    bigram_counts,
    char_windows,
    load_corpus,
    normalize_counts,
    one_hot,
    sample_token,
    softmax_with_temperature,
)

TOY = [
    s.split()
    for s in ["we walk to the lake", "we swim in the lake", "they walk to the sea"]
]


@pytest.fixture
def toy():
    vocab = Vocab.from_sequences(TOY)
    return vocab, NGramLM(vocab, order=2).fit(TOY)


# ---- Vocab ---------------------------------------------------------------------------


def test_vocab_puts_boundary_first_then_sorted_tokens():
    vocab = Vocab("banana", boundary="\n")
    assert vocab.itos == ["\n", "a", "b", "n"]
    assert len(vocab) == 4 and "n" in vocab and "z" not in vocab


def test_vocab_encode_decode_round_trip():
    vocab = Vocab.from_sequences(TOY)
    ids = vocab.encode(TOY[2])
    assert ids.dtype == np.int64
    assert vocab.decode(ids) == TOY[2]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: Vocab("abc", boundary=""), "boundary"),
        (lambda: Vocab([], boundary="<s>"), "at least one token"),
        (lambda: Vocab(["<s>"], boundary="<s>"), "at least one token"),
        (lambda: Vocab("abc").encode("abd"), "'d' is not in the vocabulary"),
        (lambda: Vocab("abc").decode([0, 9]), r"ids must lie in \[0, 4\)"),
        (lambda: Vocab("abc").decode([[0, 1]]), "1-D"),
        (lambda: Vocab("abc").decode(np.array([0.0, 1.0])), "integer"),
    ],
)
def test_vocab_rejects_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- counting and normalising --------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=2, max_size=60))
def test_bigram_counts_match_counter(ids):
    counts = bigram_counts(np.array(ids), 6)
    expected = Counter(zip(ids[:-1], ids[1:]))
    assert counts.dtype == np.int64 and counts.shape == (6, 6)
    assert counts.sum() == len(ids) - 1
    for a in range(6):
        for b in range(6):
            assert counts[a, b] == expected[(a, b)]


def test_normalize_counts_hand_example_and_uniform_empty_row():
    counts = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    np.testing.assert_allclose(
        normalize_counts(counts),
        [[0.75, 0.25, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.25, 0.25, 0.5]],
        rtol=0,
        atol=1e-15,
    )


def test_add_k_matches_exact_fractions_and_empty_row_is_k_to_zero_limit():
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 5, size=(4, 7))
    counts[1] = 0
    for k in (0.5, 1.0, 2.0):
        got = normalize_counts(counts, k)
        kf = Fraction(k)
        for a in range(4):
            total = sum(int(c) for c in counts[a]) + kf * 7
            for b in range(7):
                assert got[a, b] == pytest.approx(
                    float((int(counts[a, b]) + kf) / total), rel=1e-14
                )
    tiny = normalize_counts(counts, 1e-12)
    np.testing.assert_allclose(tiny[1], normalize_counts(counts)[1], rtol=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: bigram_counts([1], 3), "at least 2"),
        (lambda: bigram_counts([0, 3], 3), r"\[0, 3\)"),
        (lambda: bigram_counts([0, -1], 3), r"\[0, 3\)"),
        (lambda: bigram_counts([0, 1], 0), "num_tokens"),
        (lambda: bigram_counts([0.0, 1.0], 2), "integer"),
        (lambda: normalize_counts([[1, -1]]), "non-negative"),
        (lambda: normalize_counts([[1, np.nan]]), "finite"),
        (lambda: normalize_counts(np.zeros((2, 0))), "non-empty"),
        (lambda: normalize_counts([[1, 2]], k=-0.1), "k"),
        (lambda: normalize_counts([[1, 2]], k=float("inf")), "k"),
    ],
)
def test_counting_rejects_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- the n-gram model ----------------------------------------------------------------


def test_bigram_mle_on_toy_corpus(toy):
    vocab, lm = toy
    P = lm.transition_matrix()
    s = vocab.stoi
    assert P[s["the"], s["lake"]] == pytest.approx(2 / 3, rel=1e-15)
    assert P[s["we"], s["swim"]] == pytest.approx(1 / 2, rel=1e-15)
    assert P[s["<s>"], s["they"]] == pytest.approx(1 / 3, rel=1e-15)
    assert P[s["sea"], s["<s>"]] == 1.0  # "sea" always ends a sentence
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-15)


def test_sentence_probability_is_the_product_of_its_bigrams(toy):
    _, lm = toy
    sentence = "they walk to the lake".split()  # never seen whole, yet possible
    # <s>->they 1/3, they->walk 1, walk->to 1, to->the 1, the->lake 2/3, lake-><s> 1
    np.testing.assert_allclose(
        lm.step_probs(sentence), [1 / 3, 1, 1, 1, 2 / 3, 1], rtol=1e-15
    )
    assert lm.prob(sentence) == pytest.approx(2 / 9, rel=1e-14)
    assert lm.log_prob(sentence) == pytest.approx(math.log(2 / 9), rel=1e-14)


def test_unseen_bigram_gives_probability_zero_and_smoothing_repairs_it(toy):
    vocab, lm = toy
    sentence = "they swim in the sea".split()  # they -> swim was never seen
    assert lm.prob(sentence) == 0.0
    assert lm.log_prob(sentence) == -math.inf
    assert lm.prob("we walk".split()) == 0.0  # walk never ends a sentence
    smooth = NGramLM(vocab, order=2, k=1.0).fit(TOY)
    V = len(vocab)
    # counts: <s>->they 1 of 3, they->swim 0 of 1, swim->in 1 of 1, in->the 1 of 1,
    # the->sea 1 of 3, sea-><s> 1 of 1
    expected = (
        ((1 + 1) / (3 + V))
        * ((0 + 1) / (1 + V))
        * ((1 + 1) / (1 + V))
        * ((1 + 1) / (1 + V))
        * ((1 + 1) / (3 + V))
        * ((1 + 1) / (1 + V))
    )
    assert smooth.prob(sentence) == pytest.approx(expected, rel=1e-13)


def test_empty_sentence_needs_the_boundary_to_follow_itself(toy):
    vocab, lm = toy
    assert lm.prob([]) == 0.0  # <s> <s> never occurred
    assert NGramLM(vocab, 2).fit([[], ["we"]]).prob([]) == pytest.approx(0.5)


def test_bigram_model_equals_counts_of_the_stream_joined_by_boundaries(toy):
    vocab, lm = toy
    stream = np.concatenate([[0]] + [np.append(vocab.encode(s), 0) for s in TOY])
    np.testing.assert_allclose(
        lm.transition_matrix(),
        normalize_counts(bigram_counts(stream, len(vocab))),
        rtol=1e-15,
    )


def test_maximum_likelihood_beats_every_other_table(toy):
    vocab, lm = toy
    s = vocab.stoi
    pairs = [
        (s[a], s[b]) for sent in TOY for a, b in zip(["<s>"] + sent, sent + ["<s>"])
    ]
    rows, cols = np.array(pairs).T

    def log_lik(P):
        return np.log(P[rows, cols]).sum()

    best = log_lik(lm.transition_matrix())
    rng = np.random.default_rng(0)
    for _ in range(200):
        Q = lm.transition_matrix() + rng.uniform(0, 0.3, size=(len(vocab), len(vocab)))
        Q /= Q.sum(axis=1, keepdims=True)
        assert log_lik(Q) < best


def test_trigram_hand_example():
    sents = [list("aab"), list("ab"), list("aa")]
    vocab = Vocab.from_sequences(sents)
    lm = NGramLM(vocab, order=3).fit(sents)
    ids = vocab.stoi
    # histories (<s>,<s>) -> a three times; (<s>,a) -> a twice, b once; (a,a) -> b once,
    # <s> once
    np.testing.assert_allclose(lm.next_probs([0, 0]), [0, 1, 0])
    np.testing.assert_allclose(lm.next_probs([0, ids["a"]]), [0, 2 / 3, 1 / 3])
    np.testing.assert_allclose(lm.next_probs([ids["a"], ids["a"]]), [0.5, 0, 0.5])
    np.testing.assert_allclose(
        lm.next_probs([ids["b"], ids["b"]]), [1 / 3] * 3
    )  # never seen
    assert lm.prob(list("aab")) == pytest.approx(1 * 2 / 3 * 0.5 * 1)
    assert lm.num_parameters == 3**3


def test_unigram_ignores_history():
    sents = [list("ab"), list("b")]
    lm = NGramLM(Vocab.from_sequences(sents), order=1).fit(sents)
    # tokens predicted: a b <s> b <s> -> P(<s>) = 2/5, P(a) = 1/5, P(b) = 2/5
    np.testing.assert_allclose(lm.next_probs([]), [0.4, 0.2, 0.4], rtol=1e-15)
    assert lm.prob(list("b")) == pytest.approx(0.4 * 0.4)


def test_perplexity_is_exp_of_mean_negative_log_probability(toy):
    _, lm = toy
    logp = sum(lm.log_prob(s) for s in TOY)
    n_predicted = sum(len(s) + 1 for s in TOY)
    assert lm.perplexity(TOY) == pytest.approx(math.exp(-logp / n_predicted), rel=1e-14)
    assert lm.perplexity([TOY[0], "they swim in the sea".split()]) == math.inf


def test_samples_are_seeded_and_only_use_seen_bigrams(toy):
    vocab, lm = toy
    first = [lm.sample(np.random.default_rng(i)) for i in range(30)]
    again = [lm.sample(np.random.default_rng(i)) for i in range(30)]
    assert first == again
    for sentence in first:
        assert lm.log_prob(sentence) > -math.inf
    seen = {(a, b) for sent in TOY for a, b in zip(["<s>"] + sent, sent + ["<s>"])}
    for sentence in first:
        assert set(zip(["<s>"] + sentence, sentence + ["<s>"])) <= seen


def test_sample_frequencies_follow_the_first_row(toy):
    vocab, lm = toy
    rng = np.random.default_rng(1)
    firsts = Counter(lm.sample(rng)[0] for _ in range(3000))
    assert firsts["we"] / 3000 == pytest.approx(2 / 3, abs=0.04)
    assert firsts["they"] / 3000 == pytest.approx(1 / 3, abs=0.04)


def test_sample_stops_at_max_len():
    sents = [list("aaaa")]
    lm = NGramLM(Vocab.from_sequences(sents), 2).fit(sents)
    assert len(lm.sample(0, max_len=3)) <= 3


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda v: NGramLM("abc"), "vocab"),
        (lambda v: NGramLM(v, order=0), "order"),
        (lambda v: NGramLM(v, order=2.0), "order"),
        (lambda v: NGramLM(v, k=-1), "k"),
        (lambda v: NGramLM(v).fit([]), "at least one sentence"),
        (
            lambda v: NGramLM(v).fit([["we", "dragons"]]),
            "'dragons' is not in the vocabulary",
        ),
        (lambda v: NGramLM(v, order=3).fit(TOY).transition_matrix(), "order=2"),
        (lambda v: NGramLM(v, order=3).fit(TOY).next_probs([0]), "at least 2"),
        (lambda v: NGramLM(v).fit(TOY).sample(0, max_len=0), "max_len"),
        (lambda v: NGramLM(v).fit(TOY).perplexity([]), "at least one sentence"),
    ],
)
def test_ngram_rejects_bad_input(toy, call, match):
    vocab, _ = toy
    with pytest.raises(ValueError, match=match):
        call(vocab)


# ---- character-model plumbing --------------------------------------------------------


def test_one_hot_matches_torch():
    ids = np.random.default_rng(0).integers(0, 7, size=(5, 3))
    expected = torch.nn.functional.one_hot(torch.from_numpy(ids), 7).double().numpy()
    got = one_hot(ids, 7)
    assert got.dtype == np.float64 and got.shape == (5, 3, 7)
    np.testing.assert_array_equal(got, expected)


def test_char_windows_targets_are_inputs_shifted_by_one():
    ids = np.arange(100, dtype=np.int64)
    x, y = char_windows(ids, seq_len=12, batch_size=5, rng=2)
    assert x.shape == y.shape == (12, 5) and x.dtype == np.int64
    np.testing.assert_array_equal(y, x + 1)  # ids[i] = i, so next = current + 1
    np.testing.assert_array_equal(
        np.diff(x, axis=0), 1
    )  # each column is a contiguous window
    x2, _ = char_windows(ids, 12, 5, rng=2)
    np.testing.assert_array_equal(x, x2)
    x_all, y_all = char_windows(
        ids, seq_len=99, batch_size=3, rng=0
    )  # one possible start
    np.testing.assert_array_equal(x_all[:, 0], ids[:99])
    np.testing.assert_array_equal(y_all[:, 0], ids[1:])


def test_softmax_with_temperature_matches_torch():
    logits = np.random.default_rng(4).normal(size=(3, 9)) * 5
    for temperature in (0.25, 1.0, 3.0):
        expected = torch.softmax(torch.from_numpy(logits) / temperature, dim=-1).numpy()
        np.testing.assert_allclose(
            softmax_with_temperature(logits, temperature),
            expected,
            rtol=1e-12,
            atol=1e-300,
        )


def test_temperature_limits():
    logits = np.array([2.0, 1.0, 0.0, 1.5])
    np.testing.assert_allclose(
        softmax_with_temperature(logits, 1e-3), [1, 0, 0, 0], atol=1e-12
    )
    np.testing.assert_allclose(softmax_with_temperature(logits, 1e6), 0.25, rtol=1e-5)
    big = softmax_with_temperature(np.array([1000.0, 0.0]), 1.0)  # no overflow
    np.testing.assert_allclose(big, [1.0, 0.0], atol=1e-300)


def test_sample_token_frequencies():
    logits = np.log(np.array([0.1, 0.6, 0.3]))
    rng = np.random.default_rng(5)
    draws = np.array([sample_token(logits, 1.0, rng) for _ in range(4000)])
    np.testing.assert_allclose(
        np.bincount(draws, minlength=3) / 4000, [0.1, 0.6, 0.3], atol=0.03
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: one_hot([0, 3], 3), r"\[0, 3\)"),
        (lambda: one_hot([0.5], 3), "integer"),
        (
            lambda: char_windows(np.arange(5), seq_len=5, batch_size=2),
            "at least seq_len",
        ),
        (lambda: char_windows(np.arange(50), seq_len=0, batch_size=2), "seq_len"),
        (lambda: char_windows(np.arange(50), seq_len=4, batch_size=0), "batch_size"),
        (
            lambda: char_windows(np.ones((5, 5), np.int64), seq_len=2, batch_size=1),
            "1-D",
        ),
        (lambda: softmax_with_temperature([1.0, 2.0], 0.0), "temperature"),
        (lambda: softmax_with_temperature([1.0, 2.0], float("nan")), "temperature"),
        (lambda: softmax_with_temperature([1.0, np.inf], 1.0), "finite"),
        (lambda: softmax_with_temperature(np.zeros(0), 1.0), "non-empty"),
        (lambda: sample_token(np.zeros((2, 3)), 1.0), "1-D"),
    ],
)
def test_plumbing_rejects_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_corpus_ships_with_the_package():
    text = load_corpus()
    assert 5_000 <= len(text.encode("utf-8")) <= 15_000
    assert text.endswith("\n") and text == text.lower()
    lines = text.splitlines()
    assert len(lines) > 50 and all(lines)  # one non-empty sentence per line
    assert set(text) <= set("abcdefghijklmnopqrstuvwxyz .,;:'\n")
