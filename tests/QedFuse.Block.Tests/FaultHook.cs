namespace QedFuse.Block.Tests;

/// <summary>
/// Deterministic fault injection and interleaving under the engine: fails the Nth occurrence
/// of one I/O event once with a chosen errno, and can hold the thread that reaches an event
/// until the test lets it go, so a race is replayed step by step instead of hoped for.
/// </summary>
internal sealed class FaultHook : IHostFileHook
{
    private readonly object _gate = new();
    private readonly List<Action<HostFile, IoEvent, long, long>> _observers = [];
    private IoEvent? _failEvent;
    private int _failCountdown;
    private int _failErrno;
    private Func<IoEvent, long, long, bool>? _pauseWhen;
    private ManualResetEventSlim? _paused;
    private ManualResetEventSlim? _resume;

    public int Fired { get; private set; }

    /// <summary>The <paramref name="occurrence"/>th <paramref name="e"/> from now fails once with <paramref name="errno"/>.</summary>
    public void FailOnce(IoEvent e, int occurrence = 1, int errno = 5)
    {
        lock (_gate)
        {
            _failEvent = e;
            _failCountdown = occurrence;
            _failErrno = errno;
        }
    }

    /// <summary>The next thread whose event matches waits in Before until <see cref="Resume"/>.</summary>
    public void PauseAt(Func<IoEvent, long, long, bool> when)
    {
        lock (_gate)
        {
            _pauseWhen = when;
            _paused = new ManualResetEventSlim();
            _resume = new ManualResetEventSlim();
        }
    }

    public void WaitUntilPaused()
    {
        Assert.True(_paused!.Wait(TimeSpan.FromSeconds(60)), "no thread reached the pause point");
    }

    public void Resume() => _resume!.Set();

    /// <summary>Sees every event before it happens (after any injected failure passed).</summary>
    public void Observe(Action<HostFile, IoEvent, long, long> observer)
    {
        lock (_gate)
        {
            _observers.Add(observer);
        }
    }

    public void Before(HostFile file, IoEvent e, long offset, long length)
    {
        ManualResetEventSlim? resume = null;
        Action<HostFile, IoEvent, long, long>[] observers;
        lock (_gate)
        {
            if (_failEvent == e && --_failCountdown == 0)
            {
                _failEvent = null;
                Fired++;
                throw new IOException($"injected errno {_failErrno} at {e}", _failErrno);
            }

            if (_pauseWhen is { } when && when(e, offset, length))
            {
                _pauseWhen = null;
                resume = _resume;
                _paused!.Set();
            }

            observers = [.. _observers];
        }

        foreach (var o in observers)
        {
            o(file, e, offset, length);
        }

        if (resume is not null)
        {
            Assert.True(resume.Wait(TimeSpan.FromSeconds(60)), "the test never resumed the paused thread");
        }
    }

    public void After(HostFile file, IoEvent e, long offset, long length)
    {
    }
}
