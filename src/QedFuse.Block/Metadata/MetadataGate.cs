namespace QedFuse.Block.Metadata;

/// <summary>
/// The one lock that guards an image's metadata state (tables, caches, in-flight allocations),
/// with the condition waits built on it: a request that must wait for a table being loaded or
/// a cluster being allocated sleeps on the gate and is woken when any of them finishes.
/// </summary>
internal sealed class MetadataGate
{
    private int _waiters;

    /// <summary>Lock this (<c>lock (gate.Sync)</c>) around every access to the state the gate guards.</summary>
    public object Sync { get; } = new();

    /// <summary>Sleeps until <see cref="WakeLocked"/>; the gate is released meanwhile. Callers re-check their condition.</summary>
    public void WaitLocked()
    {
        _waiters++;
        try
        {
            Monitor.Wait(Sync);
        }
        finally
        {
            _waiters--;
        }
    }

    public void WakeLocked()
    {
        if (_waiters > 0)
        {
            Monitor.PulseAll(Sync);
        }
    }

    /// <summary>Runs <paramref name="io"/> with the gate released (a table read), re-taking it before returning or throwing.</summary>
    public void RunUnlocked(Action io)
    {
        Monitor.Exit(Sync);
        try
        {
            io();
        }
        finally
        {
            Monitor.Enter(Sync);
        }
    }
}
