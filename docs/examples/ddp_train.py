"""DDP training with two distributed bugs, watched by lossdoctor's Monitor.

    OMP_NUM_THREADS=1 torchrun --nproc_per_node 2 docs/examples/ddp_train.py
"""

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset

import lossdoctor as ld

dist.init_process_group("gloo")
torch.manual_seed(0)
x = torch.randn(512, 16)
data = TensorDataset(x, (x[:, :4] + 0.5 * torch.randn(512, 4)).argmax(1))
loader = DataLoader(data, batch_size=32, shuffle=True)  # bug 1: no DistributedSampler
model = DDP(nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4)))
opt = torch.optim.SGD(model.parameters(), lr=0.05)

with ld.Monitor(model, opt, every=50, on_finding="ignore") as mon:
    for epoch in range(4):
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            for p in model.parameters():  # bug 2: a manual all-reduce on top of DDP's
                dist.all_reduce(p.grad)
            opt.step()
            mon.observe(loss)
if dist.get_rank() == 0:
    print(mon.report())
dist.destroy_process_group()
