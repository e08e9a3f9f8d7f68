// Formulas wider than the column scroll inside their own box (book.css). A reader
// without a mouse must be able to reach such a box to scroll it: it joins the tab order,
// named for screen readers, while (and only while) it is too wide for the column.
function markScrollableMath() {
  const boxes = 'div.math mjx-container[display="true"], span.math mjx-container';
  document.querySelectorAll(boxes).forEach((box) => {
    if (box.scrollWidth > box.clientWidth + 1) {
      box.tabIndex = 0;
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", "equation, scrolls sideways");
    } else {
      box.removeAttribute("tabindex");
      box.removeAttribute("role");
      box.removeAttribute("aria-label");
    }
  });
}

window.addEventListener("load", () => {
  const typeset = window.MathJax?.startup?.promise;
  if (!typeset) return;
  typeset.then(markScrollableMath);
  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(markScrollableMath, 200);
  });
});

// Search result excerpts are cut from each page's HTML, where a formula is still TeX source
// (MathJax typesets it in the reader's browser): excerpts show an ellipsis in its place.
function excerptsWithoutTeX() {
  if (typeof Search === "undefined" || Search.htmlToText.withoutTeX) return;
  const htmlToText = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const page = new DOMParser().parseFromString(htmlString, "text/html");
    page.querySelectorAll(".math").forEach((formula) => formula.replaceWith("…"));
    return htmlToText(page.documentElement.outerHTML, anchor);
  };
  Search.htmlToText.withoutTeX = true;
}
excerptsWithoutTeX();
document.addEventListener("DOMContentLoaded", excerptsWithoutTeX);
