"""Support: settings, logging, errors and small utilities every layer may use."""
