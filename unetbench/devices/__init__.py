"""Devices: the Backend interface (base.py) and one folder per device."""
