"""Scale-out: sweep matrices run here or as Ray tasks across a cluster."""
