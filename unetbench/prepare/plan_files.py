"""Real-data planning (Kaggle, local folder or zip): being written; see docs/prepare.md."""

from ..errors import UserError


def plan_files(**kwargs):
    raise UserError("real-data sources are not available in this build yet; use --synthetic")
