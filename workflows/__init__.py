"""screener's data plane: what runs on compute nodes (ase, gpaw and fireworks only)."""
