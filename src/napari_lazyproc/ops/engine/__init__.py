"""The engine: lazy results, sources, the chunk cache, the registry, parameters,
precision, levels, progress."""
