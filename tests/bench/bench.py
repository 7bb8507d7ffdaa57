#!/usr/bin/env python3
"""qedfuse benchmark: raw file vs qemu-storage-daemon FUSE export vs qedfuse.

Run through `make bench` (installs fio/qemu/fuse3/gnuplot, builds out/qedfuse) or directly:
    python3 tests/bench/bench.py --qedfuse out/qedfuse [--quick] [--reps N] [--only a,b]

See tests/bench/README.md for what each number means. Needs root (drop_caches, loop mounts).
Python 3.11 stdlib only.
"""
import argparse
import atexit
import datetime
import errno
import glob
import json
import mmap
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(HERE, "results")
CLK_TCK = os.sysconf("SC_CLK_TCK")
GiB = 1 << 30
MiB = 1 << 20
IMAGE_SIZE = 4 * GiB  # the issue: a fresh 4 GiB QED image, default geometry
CLUSTER = 64 * 1024   # QED default cluster size (qemu-img create -f qed)

# --------------------------------------------------------------------------------------------
# cleanup: every mount / loop device / daemon we create registers its undo here (LIFO)
# --------------------------------------------------------------------------------------------
_undo = []


def push_undo(key, fn):
    _undo.append((key, fn))


def pop_undo(key):
    for i in range(len(_undo) - 1, -1, -1):
        if _undo[i][0] == key:
            del _undo[i]
            return


def cleanup_all():
    while _undo:
        key, fn = _undo.pop()
        try:
            fn()
        except Exception as e:  # keep going: undo everything we can
            print(f"cleanup {key}: {e}", file=sys.stderr)


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def is_mounted(path):
    path = os.path.abspath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            p = line.split(" ")[4].encode().decode("unicode_escape")
            if p == path:
                return True
    return False


def proc_cpu_seconds(pid):
    """utime+stime of the whole process (all threads) in seconds, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def proc_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def probe_direct(path):
    """Whether O_DIRECT open + aligned read works on path (FUSE servers may reject it)."""
    buf = mmap.mmap(-1, 4096)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as e:
        return False, f"open(O_DIRECT): {errno.errorcode.get(e.errno, e.errno)}"
    try:
        os.preadv(fd, [buf], 0)
        return True, ""
    except OSError as e:
        return False, f"pread(O_DIRECT): {errno.errorcode.get(e.errno, e.errno)}"
    finally:
        os.close(fd)


def fsync_path(path):
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# systems
# --------------------------------------------------------------------------------------------
class System:
    name = "?"
    is_qed = True
    pid = None

    def __init__(self, work):
        self.work = work
        self.direct = None      # decided by probe on first attach
        self.direct_note = ""
        self.filled = None      # image with the first `data_size` bytes written (seqwrite leaves it)
        self._n = 0

    def new_image(self, tag, backing=None):
        """A fresh image for this system: QED (4 GiB, default geometry) or a sparse raw file."""
        self._n += 1
        if self.is_qed:
            d = os.path.join(self.work, f"{self.name}-{tag}-{self._n}")
            os.makedirs(d)
            path = os.path.join(d, "disk.qed")
            cmd = ["qemu-img", "create", "-q", "-f", "qed"]
            if backing:
                cmd += ["-b", backing, "-F", "raw", path]
            else:
                cmd += [path, str(IMAGE_SIZE)]
            sh(cmd)
        else:
            path = os.path.join(self.work, f"{self.name}-{tag}-{self._n}.raw")
            with open(path, "wb") as f:
                f.truncate(IMAGE_SIZE)
        return path

    def attach(self, image):
        """Serve image; returns the path of the flat raw view."""
        raise NotImplementedError

    def detach(self):
        raise NotImplementedError

    def check_direct(self, target):
        if self.direct is None:
            ok, why = probe_direct(target)
            self.direct = ok
            self.direct_note = "" if ok else f"O_DIRECT rejected ({why}); buffered I/O used"
            log(f"{self.name}: O_DIRECT {'ok' if ok else 'NOT supported: ' + why}")


class RawSystem(System):
    name = "raw"
    is_qed = False

    def attach(self, image):
        self.pid = None
        return image

    def detach(self):
        pass


class QsdSystem(System):
    name = "qsd"

    def attach(self, image):
        self._n += 1
        mp = os.path.join(self.work, f"qsd-export-{self._n}.raw")
        open(mp, "w").close()  # qsd's FUSE export mount point is a regular file
        logf = open(os.path.join(self.work, f"qsd-{self._n}.log"), "w")
        cmd = ["qemu-storage-daemon",
               "--blockdev", f"driver=file,node-name=f,filename={image}",
               "--blockdev", "driver=qed,node-name=q,file=f",
               "--export", f"type=fuse,id=e,node-name=q,mountpoint={mp},writable=on"]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
        self.proc, self.mp, self.pid = p, mp, p.pid
        push_undo("qsd", self._kill)
        deadline = time.time() + 30
        while not is_mounted(mp):
            if p.poll() is not None:
                logf.flush()
                raise RuntimeError(f"qemu-storage-daemon exited {p.returncode}: " + open(logf.name).read())
            if time.time() > deadline:
                raise RuntimeError("qemu-storage-daemon: export did not appear")
            time.sleep(0.05)
        return mp

    def _kill(self):
        p = self.proc
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if is_mounted(self.mp):
            subprocess.run(["fusermount3", "-u", "-z", self.mp])

    def detach(self):
        self._kill()
        pop_undo("qsd")
        if self.proc.returncode not in (0, -signal.SIGTERM):
            log(f"warning: qemu-storage-daemon exited {self.proc.returncode}")
        self.pid = None


class QedfuseSystem(System):
    name = "qedfuse"
    env = None  # extra environment for the daemon

    def __init__(self, work, exe):
        super().__init__(work)
        self.exe = exe

    def attach(self, image):
        self._n += 1
        mp = os.path.join(self.work, f"{self.name}-mnt-{self._n}")
        os.makedirs(mp)
        self.mp = mp
        push_undo(self.name, self._unmount)
        sh([self.exe, "mount", image, mp], env=dict(os.environ, **self.env) if self.env else None)
        pidfile = os.path.join("/run/qedfuse", urllib.parse.quote(os.path.abspath(mp), safe="") + ".pid")
        try:
            self.pid = int(open(pidfile).read().strip())
        except OSError:
            out = subprocess.run(["pgrep", "-f", f"qedfuse.*mount.*{mp}"], capture_output=True, text=True).stdout.split()
            self.pid = int(out[0]) if out else None
        if self.pid is None:
            raise RuntimeError("qedfuse daemon pid not found")
        raws = glob.glob(os.path.join(mp, "*.raw"))
        if len(raws) != 1:
            raise RuntimeError(f"qedfuse mount: expected one .raw file in {mp}, got {raws}")
        return raws[0]

    def _unmount(self):
        if is_mounted(self.mp):
            r = subprocess.run([self.exe, "unmount", self.mp])
            if r.returncode != 0 and is_mounted(self.mp):
                subprocess.run(["fusermount3", "-u", "-z", self.mp])

    def detach(self):
        pid = self.pid
        r = subprocess.run([self.exe, "unmount", self.mp])
        if r.returncode != 0:
            raise RuntimeError(f"qedfuse unmount {self.mp} exited {r.returncode}")
        pop_undo(self.name)
        # unmount waits for the daemon, but be sure it is gone before the next mount
        for _ in range(200):
            if not os.path.exists(f"/proc/{pid}"):
                break
            time.sleep(0.05)
        self.pid = None


class QedfuseNoStatsSystem(QedfuseSystem):
    """qedfuse with its always-on request statistics turned off (QEDFUSE_STATS=off): side by side
    with 'qedfuse' it measures what the statistics cost (target: under 2% on every workload)."""
    name = "qedfuse-nostats"
    env = {"QEDFUSE_STATS": "off"}


# --------------------------------------------------------------------------------------------
# fio
# --------------------------------------------------------------------------------------------
def fio(args, name="job", fsync_target=None):
    """Run fio, parse its JSON. With fsync_target, fsync that file after fio exits (through the
    server: FUSE_FSYNC -> fsync of the image) and time it; 'io_s' = fio job runtime + fsync."""
    cmd = ["fio", f"--name={name}", "--output-format=json", "--group_reporting",
           "--ioengine=libaio", "--thread=0"] + args
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"fio failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}\n{r.stdout[-2000:]}")
    out = r.stdout
    out = out[out.index("{"):]  # fio may print notes before the JSON
    j = json.loads(out)
    job = j["jobs"][0]
    rd, wr = job["read"], job["write"]
    fs = 0.0
    if fsync_target:
        t1 = time.monotonic()
        fsync_path(fsync_target)
        fs = time.monotonic() - t1
    return {
        "io_s": job["job_runtime"] / 1000.0 + fs, "fsync_s": fs,
        "wall_s": wall,
        "read_bytes": rd["io_bytes"], "write_bytes": wr["io_bytes"],
        "read_ios": rd["total_ios"], "write_ios": wr["total_ios"],
        "read_bw": rd["bw_bytes"], "write_bw": wr["bw_bytes"],
        "read_iops": rd["iops"], "write_iops": wr["iops"],
        "read_clat_p50_us": rd["clat_ns"]["percentile"].get("50.000000", 0) / 1000 if rd["total_ios"] else None,
        "write_clat_p50_us": wr["clat_ns"]["percentile"].get("50.000000", 0) / 1000 if wr["total_ios"] else None,
        "job_runtime_s": job["job_runtime"] / 1000.0,
        "usr_cpu": job["usr_cpu"], "sys_cpu": job["sys_cpu"],
        "stderr": r.stderr.strip(),
    }


# --------------------------------------------------------------------------------------------
# workloads
# --------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, a, work):
        self.a = a
        self.work = work
        q = a.quick
        self.data_size = (256 * MiB) if q else (2 * GiB)      # seq write/read and random region
        self.rand_runtime = 3 if q else 15                     # seconds, random read / overwrite
        self.alloc_ios = 4096 if q else 16384                  # 4 KiB allocating writes, one per cluster
        self.backing_size = (256 * MiB) if q else (1 * GiB)
        self.tree_bytes = (48 * MiB) if q else (320 * MiB)
        self.seq_qd = 4
        self.rand_qd = 16
        self.base = None
        self.tree = None

    # ---- helpers
    def dflag(self, s):
        return [f"--direct={1 if s.direct else 0}"]

    def ensure_filled(self, s):
        if s.filled:
            return s.filled
        img = s.new_image("filled")
        t = s.attach(img)
        try:
            s.check_direct(t)
            fio([f"--filename={t}", "--rw=write", "--bs=1M", f"--iodepth={self.seq_qd}",
                 f"--size={self.data_size}", "--end_fsync=1"] + self.dflag(s), "fill")
        finally:
            s.detach()
        s.filled = img
        return img

    def ensure_base(self):
        if self.base:
            return self.base
        self.base = os.path.join(self.work, "base.raw")
        log(f"preparing backing base file ({self.backing_size >> 20} MiB of data)")
        with open(self.base, "wb") as f:
            f.truncate(self.backing_size)
        fio([f"--filename={self.base}", "--rw=write", "--bs=1M", "--iodepth=4", "--direct=1",
             f"--size={self.backing_size}", "--end_fsync=1", "--refill_buffers=1"], "base")
        return self.base

    def ensure_tree(self):
        if self.tree:
            return self.tree
        self.tree = os.path.join(self.work, "tree")
        rnd = random.Random(42)
        total = 0
        n = 0
        sizes = [512, 2048, 8192, 32768, 131072, 524288, 2 * MiB, 8 * MiB]
        weights = [20, 25, 20, 15, 10, 6, 3, 1]
        while total < self.tree_bytes:
            d = os.path.join(self.tree, f"d{n % 17:02d}", f"s{(n // 17) % 13:02d}")
            os.makedirs(d, exist_ok=True)
            size = min(rnd.choices(sizes, weights)[0] * rnd.uniform(0.5, 1.5), self.tree_bytes - total + 1)
            size = max(1, int(size))
            with open(os.path.join(d, f"f{n:05d}.bin"), "wb") as f:
                f.write(rnd.randbytes(size))
            total += size
            n += 1
        self.tree_files = n
        self.tree_size = total
        log(f"prepared copy tree: {n} files, {total / MiB:.0f} MiB")
        return self.tree

    def warm_tree(self):
        for root, _, files in os.walk(self.tree):
            for fn in files:
                with open(os.path.join(root, fn), "rb") as f:
                    while f.read(4 * MiB):
                        pass

    # ---- workloads: each returns dict(value=..., bytes=..., extra...)
    def w_seqwrite(self, s, phase):
        img = s.new_image("seqw")
        t = phase.attach(img)
        s.check_direct(t)
        phase.start()
        r = fio([f"--filename={t}", "--rw=write", "--bs=1M", f"--iodepth={self.seq_qd}",
                 f"--size={self.data_size}"] + self.dflag(s), "seqwrite", fsync_target=t)
        phase.stop()
        phase.detach()
        # keep the newest written image as this system's filled image for the read workloads
        if s.filled and s.filled != img:
            _rm_image(s.filled)
        s.filled = img
        return {"value": r["write_bytes"] / r["io_s"] / 1e6, "bytes": r["write_bytes"], "fio": r}

    def w_seqread(self, s, phase):
        img = self.ensure_filled(s)
        t = phase.attach(img)
        s.check_direct(t)
        drop_caches()
        phase.start()
        r = fio([f"--filename={t}", "--rw=read", "--bs=1M", f"--iodepth={self.seq_qd}",
                 f"--size={self.data_size}"] + self.dflag(s), "seqread")
        phase.stop()
        phase.detach()
        return {"value": r["read_bw"] / 1e6, "bytes": r["read_bytes"], "fio": r}

    def w_randread(self, s, phase):
        img = self.ensure_filled(s)
        t = phase.attach(img)
        s.check_direct(t)
        drop_caches()
        phase.start()
        r = fio([f"--filename={t}", "--rw=randread", "--bs=4k", f"--iodepth={self.rand_qd}",
                 f"--size={self.data_size}", "--time_based", f"--runtime={self.rand_runtime}",
                 "--randrepeat=0"] + self.dflag(s), "randread")
        phase.stop()
        phase.detach()
        return {"value": r["read_iops"], "bytes": r["read_bytes"], "fio": r}

    def w_overwrite(self, s, phase):
        img = self.ensure_filled(s)
        t = phase.attach(img)
        s.check_direct(t)
        drop_caches()
        phase.start()
        r = fio([f"--filename={t}", "--rw=randwrite", "--bs=4k", f"--iodepth={self.rand_qd}",
                 f"--size={self.data_size}", "--time_based", f"--runtime={self.rand_runtime}",
                 "--randrepeat=0"] + self.dflag(s), "overwrite", fsync_target=t)
        phase.stop()
        phase.detach()
        return {"value": r["write_ios"] / r["io_s"], "bytes": r["write_bytes"], "fio": r}

    def w_allocwrite(self, s, phase):
        img = s.new_image("alloc")
        # one 4 KiB write at the start of each of `alloc_ios` distinct random clusters: every
        # write allocates (fio's blockalign= disables its random map, so collisions would
        # otherwise turn some writes into overwrites); replayed as fast as possible at qd16
        rnd = random.Random(4242 + phase.rep)
        clusters = rnd.sample(range(IMAGE_SIZE // CLUSTER), self.alloc_ios)
        iolog = os.path.join(self.work, f"alloc-{s.name}-{phase.rep}.iolog")
        with open(iolog, "w") as f:
            f.write("fio version 2 iolog\nf add\nf open\n")
            for c in clusters:
                f.write(f"f write {c * CLUSTER} 4096\n")
            f.write("f close\n")
        t = phase.attach(img)
        s.check_direct(t)
        drop_caches()
        phase.start()
        r = fio([f"--filename={t}", f"--read_iolog={iolog}", f"--replay_redirect={t}",
                 "--replay_no_stall=1", f"--iodepth={self.rand_qd}"]
                + self.dflag(s), "allocwrite", fsync_target=t)
        phase.stop()
        phase.detach()
        os.unlink(iolog)
        _rm_image(img)
        return {"value": r["write_ios"] / r["io_s"], "bytes": r["write_bytes"], "fio": r}

    def w_backing(self, s, phase):
        base = self.ensure_base()
        if s.is_qed:
            img = s.new_image("overlay", backing=base)
        else:
            img = base  # the limit: read the base file itself
        t = phase.attach(img)
        s.check_direct(t)
        drop_caches()
        phase.start()
        r = fio([f"--filename={t}", "--rw=read", "--bs=1M", f"--iodepth={self.seq_qd}",
                 f"--size={self.backing_size}"] + self.dflag(s), "backing")
        phase.stop()
        phase.detach()
        if s.is_qed:
            _rm_image(img)
        return {"value": r["read_bw"] / 1e6, "bytes": r["read_bytes"], "fio": r}

    def ensure_convert_source(self):
        """A 4 GiB QED image, half allocated: 64 MiB of data in every other 128 MiB (qemu-io writes it)."""
        if getattr(self, "convert_src", None):
            return self.convert_src
        size = (512 * MiB) if self.a.quick else IMAGE_SIZE
        d = os.path.join(self.work, "convert-src")
        os.makedirs(d)
        self.convert_src = os.path.join(d, "src.qed")
        sh(["qemu-img", "create", "-q", "-f", "qed", self.convert_src, str(size)])
        cmds = []
        for off in range(0, size, 128 * MiB):
            cmds += ["-c", f"write -P {1 + off // (128 * MiB) % 250} {off} 64M"]
        sh(["qemu-io"] + cmds + [self.convert_src], stdout=subprocess.DEVNULL)
        self.convert_flat = os.path.join(d, "flat.raw")
        sh(["qemu-img", "convert", "-O", "raw", self.convert_src, self.convert_flat])
        log(f"prepared convert source: {size >> 20} MiB QED, half allocated")
        return self.convert_src

    def w_convert(self, s, phase):
        """qemu-img convert (system qsd: QEMU's tool) vs qedfuse convert, QED -> QED; raw: cp --sparse of the flat image."""
        src = self.ensure_convert_source()
        dst = os.path.join(self.work, f"convert-{s.name}-{phase.rep}.out")
        if s.name == "raw":
            cmd = ["cp", "--sparse=always", self.convert_flat, dst]
        elif s.name == "qsd":
            cmd = ["qemu-img", "convert", "-O", "qed", src, dst]
        else:
            cmd = [s.exe, "convert", "-O", "qed", src, dst]
        drop_caches()
        t0 = time.monotonic()
        sh(cmd)
        fsync_path(dst)
        secs = time.monotonic() - t0
        if s.name != "raw":
            r = subprocess.run(["qemu-img", "compare", "-q", src, dst])
            if r.returncode != 0:
                raise RuntimeError(f"convert {s.name}: the copy differs from the source")
        os.unlink(dst)
        return {"value": secs, "bytes": os.path.getsize(self.convert_flat)}

    def w_macro(self, s, phase):
        self.ensure_tree()
        img = s.new_image("macro")
        t = phase.attach(img)
        mnt = os.path.join(self.work, f"ext4-{s.name}-{phase.rep}")
        os.makedirs(mnt)
        drop_caches()
        self.warm_tree()  # the source is read from memory; we measure the write side
        phase.start()
        t0 = time.monotonic()
        sh(["mkfs.ext4", "-q", "-F", t])
        loop = subprocess.run(["losetup", "-f", "--show", t], check=True, capture_output=True,
                              text=True).stdout.strip()
        push_undo("loop", lambda: subprocess.run(["losetup", "-d", loop]))
        sh(["mount", loop, mnt])
        push_undo("ext4", lambda: subprocess.run(["umount", "-l", mnt]))
        sh(["cp", "-a", self.tree, mnt + "/"])
        os.sync()
        sh(["umount", mnt])
        pop_undo("ext4")
        sh(["losetup", "-d", loop])
        pop_undo("loop")
        fsync_path(t)  # make the server flush the image file too
        secs = time.monotonic() - t0
        phase.stop()
        phase.detach()
        os.rmdir(mnt)
        _rm_image(img)
        return {"value": secs, "bytes": self.tree_size, "tree_files": self.tree_files}


def _rm_image(path):
    """QED images live alone in their own directory; raw images are plain files."""
    if path.endswith(".qed"):
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    elif os.path.exists(path):
        os.unlink(path)


class Phase:
    """One measured run of one workload on one system: attach, CPU/RSS sampling, detach."""

    def __init__(self, s, rep):
        self.s, self.rep = s, rep
        self.cpu0 = self.cpu1 = None
        self.hwm = None

    def attach(self, img):
        return self.s.attach(img)

    def start(self):
        if self.s.pid:
            self.cpu0 = proc_cpu_seconds(self.s.pid)

    def stop(self):
        if self.s.pid:
            self.cpu1 = proc_cpu_seconds(self.s.pid)
            self.hwm = proc_hwm_kib(self.s.pid)

    def detach(self):
        self.s.detach()

    def stats(self):
        if self.cpu0 is None or self.cpu1 is None:
            return {"cpu_s": None, "hwm_kib": None}
        return {"cpu_s": self.cpu1 - self.cpu0, "hwm_kib": self.hwm}


WORKLOADS = [
    # key, label, unit, higher_is_better
    ("seqwrite", "seq write 1M (alloc)", "MB/s", True),
    ("seqread", "seq read 1M", "MB/s", True),
    ("randread", "rand read 4k qd16", "IOPS", True),
    ("overwrite", "rand overwrite 4k qd16", "IOPS", True),
    ("allocwrite", "rand alloc write 4k qd16", "IOPS", True),
    ("backing", "backing-chain seq read 1M", "MB/s", True),
    ("macro", "mkfs+cp tree+sync", "s", False),
    # qsd's row is qemu-img convert (same QEMU block layer), raw's is cp --sparse of the flat image
    ("convert", "convert 4G qed->qed half alloc", "s", False),
]


SHORT = {"seqwrite": "seq write 1M", "seqread": "seq read 1M", "randread": "rand read 4k",
         "overwrite": "rand overwrite 4k", "allocwrite": "rand alloc write 4k",
         "backing": "backing-chain read", "macro": "mkfs+cp+sync", "convert": "convert qed->qed"}


def fmt_val(v, unit):
    if v is None:
        return "-"
    if unit == "IOPS":
        return f"{v / 1000:.1f}k"
    if unit == "s":
        return f"{v:.1f}"
    return f"{v:.0f}"


def speed_ratio(v, ref, higher):
    if v is None or ref in (None, 0) or v == 0:
        return None
    return v / ref if higher else ref / v


def summarize(results, systems):
    """results[wl][sys] = list of run dicts -> summary with medians and ratios."""
    summ = {}
    for key, label, unit, higher in WORKLOADS:
        if key not in results:
            continue
        row = {}
        for s in systems:
            runs = results[key].get(s.name, [])
            if not runs:
                continue
            vals = [r["value"] for r in runs]
            cpus = [r["cpu_s"] for r in runs if r.get("cpu_s") is not None]
            hwms = [r["hwm_kib"] for r in runs if r.get("hwm_kib") is not None]
            byts = statistics.median([r["bytes"] for r in runs])
            med_cpu = statistics.median(cpus) if cpus else None
            row[s.name] = {
                "median": statistics.median(vals), "values": vals,
                "cpu_s_median": med_cpu,
                "cpu_s_per_gib": (med_cpu / (byts / GiB)) if med_cpu is not None and byts else None,
                "peak_rss_mib": (max(hwms) / 1024) if hwms else None,
                "bytes_median": byts,
                "direct": s.direct if s.name != "macro" else None,
            }
        for name, d in row.items():
            d["x_qsd"] = speed_ratio(d["median"], row.get("qsd", {}).get("median"), higher)
            d["x_raw"] = speed_ratio(d["median"], row.get("raw", {}).get("median"), higher)
        summ[key] = {"label": label, "short": SHORT[key], "unit": unit, "higher_is_better": higher, "systems": row}
    return summ


def table(summ, systems, reps):
    lines = []
    hdr = "| workload | system | median | unit | x qsd | x raw | daemon CPU s | CPU s/GiB | peak RSS MiB | I/O |"
    lines.append(hdr)
    lines.append("|" + "---|" * (hdr.count("|") - 1))
    for key, w in summ.items():
        for s in systems:
            d = w["systems"].get(s.name)
            if not d:
                continue
            r = lambda x: "-" if x is None else f"{x:.2f}"
            rss = "-" if d["peak_rss_mib"] is None else f"{d['peak_rss_mib']:.0f}"
            io = "buffered (loop)" if key == "macro" else ("direct" if s.direct else "BUFFERED (no O_DIRECT)")
            lines.append(
                f"| {w['label']} | {s.name} | {fmt_val(d['median'], w['unit'])} | {w['unit']} | "
                f"{r(d['x_qsd'])} | {r(d['x_raw'])} | {r(d['cpu_s_median'])} | {r(d['cpu_s_per_gib'])} | "
                f"{rss} | {io} |")
    return "\n".join(lines)


def plot(summ, systems, png, title):
    if not shutil.which("gnuplot"):
        log("gnuplot not found: no PNG")
        return False
    dat = png[:-4] + ".dat"
    names = [s.name for s in systems]
    with open(dat, "w") as f:
        f.write("# workload " + " ".join(names) + "\n")
        for key, w in summ.items():
            vals = []
            for n in names:
                d = w["systems"].get(n)
                x = d["x_raw"] if d and d["x_raw"] is not None else (1.0 if n == "raw" else 0)
                vals.append(f"{x:.4f}")
            f.write('"' + w["short"] + '" ' + " ".join(vals) + "\n")
    cols = ", ".join(
        (f"'{dat}' using {i + 2}:xtic(1) title '{n}'" if i == 0 else f"'' using {i + 2} title '{n}'")
        for i, n in enumerate(names))
    script = f"""
set terminal pngcairo size 1400,650 font ',10' noenhanced
set output '{png}'
set title '{title}'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 10
set yrange [0.01:*]
set ytics (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20)
set ylabel 'speed relative to raw file (log; higher is better)'
set grid ytics
set key top right
set xtics font ',9'
plot {cols}
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        # pngcairo may be missing in gnuplot-nox builds; fall back to the plain png terminal
        script = script.replace("pngcairo size 1400,650 font ',10' noenhanced", "png size 1400,650 noenhanced")
        r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    os.unlink(dat)
    if r.returncode != 0:
        log("gnuplot failed: " + r.stderr)
        return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qedfuse", default=os.path.join(HERE, "..", "..", "out", "qedfuse"))
    ap.add_argument("--quick", action="store_true", help="small sizes, 1 repetition (< 3 minutes)")
    ap.add_argument("--reps", type=int, help="repetitions per workload and system (default 3, quick 1)")
    ap.add_argument("--only", help="comma-separated workloads: " + ",".join(w[0] for w in WORKLOADS))
    ap.add_argument("--systems", default="raw,qsd,qedfuse",
                    help="comma-separated: raw, qsd, qedfuse, qedfuse-nostats (qedfuse with its request statistics "
                         "off; next to qedfuse it shows what the statistics cost)")
    ap.add_argument("--workdir", default="/var/tmp", help="parent of the temporary work directory")
    ap.add_argument("--out", default=RESULTS_DIR)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (drop_caches, loop mounts, FUSE)")
    reps = a.reps or (1 if a.quick else 3)
    only = a.only.split(",") if a.only else [w[0] for w in WORKLOADS]
    for o in only:
        if o not in [w[0] for w in WORKLOADS]:
            sys.exit(f"bench: unknown workload {o}")
    exe = os.path.abspath(a.qedfuse)
    if "qedfuse" in a.systems and not os.access(exe, os.X_OK):  # also qedfuse-nostats
        sys.exit(f"bench: {exe} not found; run make build")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    atexit.register(cleanup_all)
    work = tempfile.mkdtemp(prefix="qedfuse-bench.", dir=a.workdir)
    push_undo("workdir", lambda: shutil.rmtree(work, ignore_errors=True))
    log(f"work dir {work}; {'quick' if a.quick else 'full'} mode, {reps} repetition(s)")

    all_sys = {"raw": RawSystem(work), "qsd": QsdSystem(work), "qedfuse": QedfuseSystem(work, exe),
               "qedfuse-nostats": QedfuseNoStatsSystem(work, exe)}
    systems = [all_sys[n] for n in a.systems.split(",")]
    b = Bench(a, work)
    started = datetime.datetime.now().astimezone()
    t_start = time.monotonic()
    results = {}
    for key, label, unit, higher in WORKLOADS:
        if key not in only:
            continue
        fn = getattr(b, "w_" + key)
        results[key] = {}
        for rep in range(reps):
            # interleave: every repetition runs each system once, rotating the order
            order = systems[rep % len(systems):] + systems[:rep % len(systems)]
            for s in order:
                ph = Phase(s, rep)
                r = fn(s, ph)
                r.update(ph.stats())
                r["rep"] = rep
                results[key].setdefault(s.name, []).append(r)
                extra = f" cpu {r['cpu_s']:.2f}s rss {r['hwm_kib'] / 1024:.0f}MiB" if r.get("cpu_s") is not None else ""
                log(f"{label:28s} rep {rep + 1}/{reps} {s.name:8s} {fmt_val(r['value'], unit):>8s} {unit}{extra}")
    elapsed = time.monotonic() - t_start

    summ = summarize(results, systems)
    uname = platform.uname()
    cpu_model = ""
    try:
        cpu_model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except StopIteration:
        pass
    versions = {
        "fio": subprocess.run(["fio", "--version"], capture_output=True, text=True).stdout.strip(),
        "qemu-storage-daemon": subprocess.run(["qemu-storage-daemon", "--version"], capture_output=True,
                                              text=True).stdout.splitlines()[0],
        "qedfuse_commit": subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                                         capture_output=True, text=True).stdout.strip(),
    }
    meta = {
        "date": started.isoformat(timespec="seconds"), "elapsed_s": round(elapsed, 1),
        "mode": "quick" if a.quick else "full", "reps": reps,
        "host": uname.node, "kernel": uname.release, "cpu": cpu_model, "ncpu": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB, 1),
        "versions": versions,
        "params": {"image_size": IMAGE_SIZE, "data_size": b.data_size, "rand_runtime_s": b.rand_runtime,
                   "alloc_ios": b.alloc_ios, "backing_size": b.backing_size,
                   "tree_bytes": getattr(b, "tree_size", None), "tree_files": getattr(b, "tree_files", None),
                   "seq_iodepth": b.seq_qd, "rand_iodepth": b.rand_qd, "ioengine": "libaio"},
        "direct": {s.name: {"direct": s.direct, "note": s.direct_note} for s in systems},
    }
    tbl = table(summ, systems, reps)
    head = (f"qedfuse bench — {meta['date']} — {meta['mode']} ({reps} rep) — {uname.node}, {meta['ncpu']} CPU "
            f"{cpu_model}, {meta['mem_gib']} GiB, kernel {uname.release} — {versions['qemu-storage-daemon']}, "
            f"{versions['fio']}, qedfuse {versions['qedfuse_commit']} — {elapsed:.0f}s")
    print()
    print(head)
    print()
    print(tbl)
    for s in systems:
        if s.direct_note:
            print(f"note: {s.name}: {s.direct_note}")
    print("medians; x qsd / x raw are speed ratios (>1 = faster than the reference; for the macro case "
          "the ratio of elapsed times); daemon CPU = utime+stime delta of the server process over the "
          "measured part; peak RSS = VmHWM of the server (max over runs). See tests/bench/README.md.")

    os.makedirs(a.out, exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S") + ("-quick" if a.quick else "")
    jpath = os.path.join(a.out, f"bench-{stamp}.json")
    with open(jpath, "w") as f:
        json.dump({"meta": meta, "summary": summ, "runs": results, "table_markdown": tbl, "title": head},
                  f, indent=1, default=str)
    png = os.path.join(a.out, f"bench-{stamp}.png")
    ok = plot(summ, systems, png, f"qedfuse bench {meta['date']} ({meta['mode']}, median of {reps})")
    print(f"\nresults: {jpath}" + (f"\nplot:    {png}" if ok else ""))


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup_all()
