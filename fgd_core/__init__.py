"""FGD Sync core library."""
