"""labkit: the small, fully tested numpy toolkit every chapter of the course imports.

Modules, one concept each: ``ewma`` (exponentially weighted averages), ``nets`` (layers with
forward and backward, mirroring torch.nn), ``optim`` and ``lr_scheduler`` (mirroring torch.optim),
``data`` (seeded generators, nothing downloaded), ``plots`` (figure helpers), ``runtime``
(seeding and device choice), ``exercises`` and ``check`` (the exercise contract) and ``grade``
(the grader).
"""

from .runtime import device, seed

__version__ = "0.1.0"
__all__ = ["device", "seed", "__version__"]
