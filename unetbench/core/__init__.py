"""The suite's torch-free core: registry index, settings (the only flag list), value parsing,
errors, atomic writes, the progress bar. The login node imports it without torch."""
