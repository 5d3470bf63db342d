"""The reach-blind property's harness: fresh fairdesks, recorded helpdesks, and platforms that carry reach."""
