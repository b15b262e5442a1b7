"""Say which import really failed: "X is not installed" only when X itself is missing.

    try:
        import kaggle
    except ImportError as err:
        raise UserError(import_failure(err, "kaggle", "pip install 'unetbench[kaggle]'")) from None

An installed package whose own dependency is missing raises the same ImportError; reporting it
as "not installed" sends the user to reinstall what is already there.
"""

from __future__ import annotations


def import_failure(err: ImportError, package: str, install: str) -> str:
    missing = getattr(err, "name", None) or ""
    if not missing or missing.split(".")[0] == package.split(".")[0]:
        return f"the {package} package is not installed: {install}"
    top = missing.split(".")[0]
    return (f"the {package} package is installed but cannot be imported: it needs the module {missing!r}, "
            f"which is missing ({err}); install it (pip install {top}) or reinstall {package} with its dependencies")
