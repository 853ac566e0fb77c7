"""Operations that move voxels: transforms, deskew, projections, per-frame shifts."""
