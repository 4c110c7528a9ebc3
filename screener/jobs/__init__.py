"""Jobs: sites -> FireWorks workflows (exactly once), FireWorks -> calculations in the store."""
