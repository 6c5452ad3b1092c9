"""Dataset readers and the small data sets the demo and tests generate from shipped sources."""
