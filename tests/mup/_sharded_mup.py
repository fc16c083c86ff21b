"""Run by test_sharding.py in a subprocess with 4 forced CPU devices (XLA_FLAGS).

The muP optimizer on FSDP-sharded parameters (hidden matrices split over their fan-in on
a 4-device mesh) against the same optimizer on unsharded ones: 3 steps, an orbax save and
restore of the sharded params and optimizer state, 2 more steps. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from scalelaw.models import TransformerConfig, transformer
from scalelaw.mup.optim import adamw, layer_rules
from scalelaw.mup.roles import Role
from scalelaw.mup.rules import Parametrization


def main() -> None:
    assert jax.device_count() == 4, jax.devices()
    CFG = TransformerConfig(width=64, depth=2, head_dim=16, context=16, vocab=256)
    PARAM = Parametrization("mup", base_width=32, scale_adam_eps=True, weight_decay_rule="sqrt")
    roles = transformer.roles(CFG, PARAM)
    opt = adamw(1e-2, 0.1, roles=roles, parametrization=PARAM, eps=1e-6, depth=CFG.depth)
    tokens = jax.random.randint(jax.random.key(1), (8, CFG.context + 1), 0, 256)

    def make_step(shardings: dict | None = None) -> object:
        @jax.jit
        def step(params: dict, state: object) -> tuple:
            def loss(params: dict) -> jax.Array:
                logits = transformer.forward(params, tokens[:, :-1], CFG, PARAM)
                return transformer.cross_entropy(logits, tokens[:, 1:])

            grads = jax.grad(loss)(params)
            updates, state = opt.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            if shardings is not None:  # FSDP keeps the parameters sharded as they were
                params = jax.lax.with_sharding_constraint(params, shardings)
            return params, state

        return step

    def run(params: dict, state: object, n: int, shardings: dict | None = None) -> tuple:
        step = make_step(shardings)
        for _ in range(n):
            params, state = step(params, state)
        return params, state

    mesh = Mesh(np.array(jax.devices()), ("fsdp",))

    def spec(role: Role, x: jax.Array) -> NamedSharding:
        if role.kind == "hidden":  # (L, fan_in, fan_out): FSDP over the fan-in
            return NamedSharding(mesh, P(None, "fsdp", None))
        return NamedSharding(mesh, P())

    params = transformer.init_params(CFG, PARAM, jax.random.key(0))
    shardings = jax.tree.map(spec, roles, params, is_leaf=lambda r: isinstance(r, Role))
    sharded = jax.device_put(params, shardings)
    # the role pytree is parallel to the sharded parameters and gives the same multipliers
    rules_plain = layer_rules(roles, PARAM, CFG.depth)
    sharded_roles_ok = jax.tree.structure(sharded) == jax.tree.structure(
        jax.tree.map(lambda r: 0, roles, is_leaf=lambda r: isinstance(r, Role)))

    ref_p, ref_s = run(params, opt.init(params), 3)
    sh_p, sh_s = run(sharded, opt.init(sharded), 3, shardings)
    after3 = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                 zip(jax.tree.leaves(ref_p), jax.tree.leaves(sh_p), strict=True))
    kept = all(sh_p[k].sharding.is_equivalent_to(shardings[k], sh_p[k].ndim) for k in sh_p)

    # orbax: save the sharded params and optimizer state, restore them sharded, continue
    directory = sys.argv[1]
    leaves, treedef = jax.tree.flatten((sh_p, sh_s))
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(f"{directory}/ckpt", {f"{i:05d}": x for i, x in enumerate(leaves)})
    ckpt.wait_until_finished()
    target = {f"{i:05d}": jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
              for i, x in enumerate(leaves)}
    restored = ckpt.restore(f"{directory}/ckpt", target)
    re_p, re_s = jax.tree.unflatten(treedef, [restored[k] for k in sorted(restored)])
    restored_kept = all(re_p[k].sharding.is_equivalent_to(shardings[k], re_p[k].ndim) for k in re_p)
    split = re_p["wq"].addressable_shards[0].data.shape  # one device's block of wq
    ref_p, _ = run(ref_p, ref_s, 2)
    re_p, _ = run(re_p, re_s, 2, shardings)
    after5 = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                 zip(jax.tree.leaves(ref_p), jax.tree.leaves(re_p), strict=True))
    moved = float(jnp.max(jnp.abs(re_p["wq"] - params["wq"])))
    print(json.dumps({"after3": after3, "after5": after5, "kept": kept, "moved": moved,
                      "restored_kept": restored_kept, "roles_parallel": sharded_roles_ok,
                      "hidden_lr_mult": rules_plain["wq"].lr_mult,
                      "wq_shard": list(split)}))


if __name__ == "__main__":  # not on import (pytest --doctest-modules imports it)
    main()
