namespace QedFuse.Block.Clusters;

/// <summary>
/// Host I/O that runs outside the metadata gate (a read of a data run, an in-place write)
/// with a host offset it looked up under the gate. A cluster freed meanwhile must not be
/// reused until that I/O is over, or the write would land in another virtual cluster's data
/// (or the read return it). Frees are stamped with an epoch; a free may be applied once every
/// I/O still running began at or after its stamp. Guarded by the gate.
/// </summary>
internal sealed class HostIoEpochs
{
    private readonly SortedDictionary<long, int> _running = [];
    private long _epoch;

    /// <summary>Registers an I/O about to run with host offsets looked up now; pass the ticket to <see cref="End"/>.</summary>
    public long Begin()
    {
        _running[_epoch] = _running.GetValueOrDefault(_epoch) + 1;
        return _epoch;
    }

    public void End(long ticket)
    {
        if (_running[ticket] == 1)
        {
            _running.Remove(ticket);
        }
        else
        {
            _running[ticket]--;
        }
    }

    /// <summary>A stamp for a free recorded now: I/O that begins later cannot use the freed clusters.</summary>
    public long Stamp() => ++_epoch;

    /// <summary>Whether a free stamped <paramref name="stamp"/> may be applied: no I/O older than it is running.</summary>
    public bool Settled(long stamp) => _running.Count == 0 || _running.First().Key >= stamp;
}
