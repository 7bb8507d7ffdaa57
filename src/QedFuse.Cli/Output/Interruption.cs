using System.Runtime.InteropServices;

namespace QedFuse.Cli.Output;

/// <summary>
/// Turns the first SIGINT or SIGTERM into a cancellation, so that a long verb stops between
/// requests and leaves its images consistent (and convert removes its unfinished target). A
/// second signal ends the process at once, as the user insists.
/// </summary>
internal sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly PosixSignalRegistration[] _registrations;

    public Interruption()
    {
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal),
        ];
    }

    public CancellationToken Token => _cts.Token;

    public void Dispose()
    {
        foreach (var r in _registrations)
        {
            r.Dispose();
        }

        _cts.Dispose();
    }

    private void OnSignal(PosixSignalContext context)
    {
        if (!_cts.IsCancellationRequested)
        {
            context.Cancel = true;
            _cts.Cancel();
        }
    }
}
