"""Where PyTorch's training step goes on this machine: one step of a torchvision model (2 threads,
SGD momentum, cross-entropy, batch 32 at 224, as ../shared/bench/torch_reference.py) under
torch.autograd.profiler, self CPU time per op, and the split between convolutions/GEMMs and the
rest. A measuring tool beside bench/engine/profile-step.ts, never a dependency of the product.
Run: /usr/bin/python3 bench/engine/torch-profile.py [model]   (Debian python3-torch)"""
import sys, time
import torch, torchvision

torch.set_num_threads(2)
name = sys.argv[1] if len(sys.argv) > 1 else 'resnet18'
model = getattr(torchvision.models, name)(num_classes=10)
x = torch.randn(32, 3, 224, 224)
y = torch.randint(0, 10, (32,))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
lossf = torch.nn.CrossEntropyLoss()
model.train()


def step():
    opt.zero_grad(set_to_none=True)
    lossf(model(x), y).backward()
    opt.step()


for _ in range(2):
    step()
t = time.perf_counter()
step()
step()
print('step ms', round((time.perf_counter() - t) / 2 * 1000, 1))
with torch.autograd.profiler.profile() as prof:
    step()
    step()
rows = {e.key: e.self_cpu_time_total / 2 / 1000 for e in prof.key_averages()}
total = sum(rows.values())
gemm = sum(v for k, v in rows.items() if 'conv' in k.lower() or 'mkldnn' in k.lower() or k in ('aten::addmm', 'aten::mm'))
print('profile ms', round(total), 'convolutions and GEMMs ms', round(gemm), 'the rest ms', round(total - gemm))
for k, v in sorted(rows.items(), key=lambda kv: -kv[1])[:24]:
    print(f'{v:8.1f}  {k}')
