"""Data parallelism: average the field across processes before any solver term is formed.

`Engine(..., reduce=mean_reducer(), world=dist.get_world_size())` makes every solver
data-parallel. `evaluate` averages v over the processes and `vjp` averages each process's
J_k^T u, so consensus computes grad L = J-bar^T v-bar exactly: a distributed step equals
the single-process step on the concatenated batch (for utilities that are means over the
batch), up to floating point. One all-reduce per reduction, on a flattened buffer.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from solvers.engine import Reduce, Vec


def mean_reducer(group=None) -> Reduce:
    world = dist.get_world_size(group)

    def reduce(xs: Vec) -> Vec:
        if not xs:
            return xs
        flat = torch.cat([x.reshape(-1) for x in xs])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        flat /= world
        return [part.view_as(x) for part, x in zip(flat.split([x.numel() for x in xs]), xs)]

    return reduce
