"""Repository tools (not shipped in the wheel): documentation generators run from a source checkout."""
