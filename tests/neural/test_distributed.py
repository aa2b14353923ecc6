"""Data-parallel training on two processes (gloo on the CPU) against one process.

Two processes with ``batch_size`` b each must take exactly the optimizer steps of one process
with batch size 2b: the gradients are averaged over the global batch.
"""

import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from latentspace.neural import GAN, VAE, Autoencoder, load_checkpoint

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="needs torch.distributed with gloo",
)


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((256, 12)) @ rng.standard_normal((12, 12))


def _estimator(ckpt=None):
    return Autoencoder(3, hidden_sizes=(16,), max_epochs=4, batch_size=16, random_state=0,
                       checkpoint_path=ckpt)


def _worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        ae = _estimator(ckpt=os.path.join(out, "run.ckpt"))
        if rank == 1:
            ae.set_params(random_state=123)  # other seeds: rank 0's weights and stream win
        ae.fit(_data())
        np.save(os.path.join(out, f"rank{rank}.npy"), ae.transform(_data()))
        np.save(os.path.join(out, f"loss{rank}.npy"), [h["loss"] for h in ae.history_])
        # two optimizers (k discriminator steps) and per-step noise: no process may wait alone
        gan = GAN(2, generator_sizes=(8,), discriminator_sizes=(8,), k_steps=2, max_epochs=2,
                  batch_size=16, random_state=0).fit(_data().astype(np.float32))
        np.save(os.path.join(out, f"gan{rank}.npy"), gan.sample(5, random_state=0))
        vae = VAE(2, hidden_sizes=(8,), likelihood="gaussian", max_epochs=2, batch_size=16,
                  random_state=0).fit(_data())
        np.save(os.path.join(out, f"vae{rank}.npy"), vae.transform(_data()[:5]))
    finally:
        torch.distributed.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_with_the_global_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    z0, z1 = np.load(tmp_path / "rank0.npy"), np.load(tmp_path / "rank1.npy")
    np.testing.assert_array_equal(z0, z1)  # every process ends with the same model
    np.testing.assert_array_equal(np.load(tmp_path / "loss0.npy"), np.load(tmp_path / "loss1.npy"))

    for name in ("gan", "vae"):
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}0.npy"),
                                      np.load(tmp_path / f"{name}1.npy"))

    # float32 networks: the two runs differ only in summation order
    single = _estimator().set_params(batch_size=32).fit(_data())
    np.testing.assert_allclose(z0, single.transform(_data()), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "loss0.npy"),
                               [h["loss"] for h in single.history_], rtol=1e-5)
    state = load_checkpoint(tmp_path / "run.ckpt")  # written once, by rank 0
    assert state["epoch"] == 4
