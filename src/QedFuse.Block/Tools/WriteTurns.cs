namespace QedFuse.Block.Tools;

/// <summary>
/// Lets parallel workers write in sequence order: the worker holding chunk N waits until every
/// chunk before it has been written. A failure or cancellation releases every waiter.
/// </summary>
internal sealed class WriteTurns
{
    private readonly object _lock = new();
    private readonly bool _ordered;
    private long _next;
    private bool _aborted;

    public WriteTurns(bool ordered)
    {
        _ordered = ordered;
    }

    public void WaitFor(long sequence, CancellationToken cancel)
    {
        if (!_ordered)
        {
            return;
        }

        lock (_lock)
        {
            while (_next != sequence)
            {
                if (_aborted || cancel.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancel);
                }

                // Timed, so that a cancellation is seen without a pulse.
                Monitor.Wait(_lock, 100);
            }
        }
    }

    public void Done()
    {
        if (!_ordered)
        {
            return;
        }

        lock (_lock)
        {
            _next++;
            Monitor.PulseAll(_lock);
        }
    }

    public void Abort()
    {
        lock (_lock)
        {
            _aborted = true;
            Monitor.PulseAll(_lock);
        }
    }
}
