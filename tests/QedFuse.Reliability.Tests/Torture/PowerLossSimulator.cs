using Microsoft.Win32.SafeHandles;
using QedFuse.Block;

namespace QedFuse.Reliability.Tests.Torture;

/// <summary>
/// Fault injection under the engine, in the spirit of QEMU's blkdebug: at the Nth occurrence
/// of a named I/O event it injects EIO or ENOSPC once, or "crashes" (every later I/O fails,
/// as after a power loss). It also plays the disk's volatile write cache: for every 512-byte
/// sector written since the last successful sync it keeps each version, and after a crash
/// lets every such sector independently end up holding any one of them. Whatever the engine
/// did not make durable with a sync may thus be lost, reordered or half there.
/// </summary>
internal sealed class PowerLossSimulator : IHostFileHook
{
    private const int Sector = 512;

    private readonly object _gate = new();
    private readonly Random _rng;
    private readonly Dictionary<long, List<byte[]>> _unsynced = [];
    private readonly List<(long Offset, long Length)> _inProgress = [];
    private int _countdown;

    public PowerLossSimulator(int seed, IoEvent target, int occurrence, Fault fault)
    {
        _rng = new Random(seed);
        Target = target;
        _countdown = occurrence;
        Injected = fault;
    }

    public enum Fault
    {
        Crash,
        Eio,
        Enospc,
    }

    public IoEvent Target { get; }

    public Fault Injected { get; }

    public bool Fired { get; private set; }

    public bool Crashed { get; private set; }

    public void Before(HostFile file, IoEvent e, long offset, long length)
    {
        lock (_gate)
        {
            if (Crashed)
            {
                throw new IOException("simulated power loss: the disk is gone", 5);
            }

            if (e == Target && !Fired && --_countdown <= 0)
            {
                Fired = true;
                switch (Injected)
                {
                    case Fault.Crash:
                        Crashed = true;
                        throw new IOException($"simulated power loss at {e}", 5);
                    case Fault.Eio:
                        throw new IOException($"injected EIO at {e}", 5);
                    default:
                        throw new IOException($"injected ENOSPC at {e}", 28);
                }
            }

            if (e == IoEvent.Flush)
            {
                return;
            }

            if (length > 0 && e != IoEvent.Grow)
            {
                _inProgress.Add((offset, length));
                ForEachSector(file, offset, length, (sector, content) =>
                {
                    if (!_unsynced.ContainsKey(sector))
                    {
                        _unsynced[sector] = [content];
                    }
                });
            }
        }
    }

    public void After(HostFile file, IoEvent e, long offset, long length)
    {
        lock (_gate)
        {
            if (e == IoEvent.Flush)
            {
                // Durable now, except sectors a write still in progress may change: their
                // latest version is the new durable base.
                foreach (long sector in _unsynced.Keys.ToList())
                {
                    if (_inProgress.Any(w => sector * Sector < w.Offset + w.Length && (sector + 1) * Sector > w.Offset))
                    {
                        _unsynced[sector] = [_unsynced[sector][^1]];
                    }
                    else
                    {
                        _unsynced.Remove(sector);
                    }
                }

                return;
            }

            if (length > 0 && e != IoEvent.Grow)
            {
                _inProgress.Remove((offset, length));
                ForEachSector(file, offset, length, (sector, content) => _unsynced[sector].Add(content));
            }
        }
    }

    /// <summary>After a crash: each unsynced sector keeps one of its versions, chosen at random.</summary>
    public void LoseUnsyncedWrites(string path)
    {
        using SafeFileHandle h = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        foreach (var (sector, versions) in _unsynced)
        {
            byte[] chosen = versions[_rng.Next(versions.Count)];
            RandomAccess.Write(h, chosen, sector * Sector);
        }
    }

    private static void ForEachSector(HostFile file, long offset, long length, Action<long, byte[]> action)
    {
        long first = offset / Sector;
        long end = (offset + length + Sector - 1) / Sector;
        var range = new byte[(end - first) * Sector];
        RandomAccess.Read(file.Handle, range, first * Sector); // short past EOF: the rest stays zeros
        for (long s = first; s < end; s++)
        {
            action(s, range.AsSpan((int)((s - first) * Sector), Sector).ToArray());
        }
    }
}
