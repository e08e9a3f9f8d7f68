"""labkit: the small, fully tested numpy toolkit every chapter of the course imports.

Modules, one concept each:

- ``nets``: layers with forward and backward, mirroring ``torch.nn``;
- ``optim`` and ``lr_scheduler``: optimizers and learning-rate schedules, mirroring
  ``torch.optim``;
- ``ewma``: exponentially weighted averages, every convention named;
- ``units`` (chapter 1), ``gradcheck`` (chapter 2), ``language`` (chapter 3), ``conv``
  (chapter 4), ``surfaces`` (chapter 5), ``augment`` and ``training`` (chapter 6): what
  one chapter teaches;
- ``data`` (seeded generators, nothing downloaded), ``plots`` (figure helpers),
  ``runtime`` (seeding and device choice);
- ``exercises`` and ``check`` (the exercise contract) and ``grade`` (the grader).
"""

from .runtime import device, seed

__version__ = "0.1.0"
__all__ = ["device", "seed", "__version__"]
