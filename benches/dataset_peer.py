"""PyTorch peer of `benches/dataset.rs`: a torchvision-style CSV dataset
(ISIC 2019 ground truth, one-hot labels) read by a DataLoader with worker
processes, each image opened with PIL, converted to RGB and resized to
SIZE x SIZE with a bilinear (triangle) filter, as torchvision's Resize on
PIL images does; one pass over the set, as the first epoch of a training
run that decodes on the fly. Prints one JSON line.

Usage: dataset_peer.py TABLE IMAGE_DIR SIZE WORKERS BATCH
"""

import csv
import json
import os
import resource
import sys
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset


class IsicTable(Dataset):
    def __init__(self, table, image_dir, size):
        with open(table, newline="") as f:
            rows = list(csv.DictReader(f))
        classes = [c for c in rows[0].keys() if c != "image"]
        self.items = []
        for r in rows:
            label = next(i for i, c in enumerate(classes) if float(r[c]) == 1.0)
            self.items.append((os.path.join(image_dir, r["image"] + ".jpg"), label))
        self.size = size

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        img = Image.open(path).convert("RGB").resize((self.size, self.size), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
        return x, label


def main():
    table, image_dir, size, workers, batch = sys.argv[1:6]
    torch.set_num_threads(1)
    ds = IsicTable(table, image_dir, int(size))
    loader = DataLoader(ds, batch_size=int(batch), num_workers=int(workers), shuffle=False)
    t0 = time.perf_counter()
    n = 0
    for x, _ in loader:
        n += x.shape[0]
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({
        "images": n,
        "seconds": seconds,
        "images_per_second": n / seconds,
        "peak_rss_mb": peak,
        "worker_peak_rss_mb": workers_peak,
        "pillow": Image.__version__,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
