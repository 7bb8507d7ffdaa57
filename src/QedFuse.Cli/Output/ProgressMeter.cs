using System.Globalization;
using System.Runtime.InteropServices;
using QedFuse.Block;

namespace QedFuse.Cli.Output;

/// <summary>
/// qemu-img's -p: "    (42.00/100%)" on stdout, rewritten in place on a terminal; on a pipe or
/// file a plain line every 10%, so logs stay short. SIGUSR1 prints the current line whether
/// -p was given or not (as qemu-img and dd do).
/// </summary>
internal sealed class ProgressMeter : IDisposable
{
    private const int SigUsr1 = 10;
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(200);

    private readonly WorkProgress _work;
    private readonly bool _show;
    private readonly bool _inPlace = !Console.IsOutputRedirected;
    private readonly object _lock = new();
    private readonly Timer? _timer;
    private readonly PosixSignalRegistration? _usr1;
    private double _shown = -1;
    private bool _finished;

    public ProgressMeter(WorkProgress work, bool show)
    {
        _work = work;
        _show = show;
        try
        {
            _usr1 = PosixSignalRegistration.Create((PosixSignal)SigUsr1, ctx =>
            {
                ctx.Cancel = true;
                lock (_lock)
                {
                    Console.Out.Write(Line(_work.Percent) + "\n");
                    Console.Out.Flush();
                }
            });
        }
        catch (PlatformNotSupportedException)
        {
            _usr1 = null;
        }

        // After the SIGUSR1 handler: whoever sees the first line may signal.
        if (show)
        {
            Render(0);
            _timer = new Timer(_ => Update(), null, Tick, Tick);
        }
    }

    /// <summary>The work is done: shows 100% and ends the line.</summary>
    public void Finish()
    {
        if (!_show)
        {
            return;
        }

        lock (_lock)
        {
            _finished = true;
            Render(100);
            if (_inPlace)
            {
                Console.Out.Write("\n");
            }

            Console.Out.Flush();
        }
    }

    public void Dispose()
    {
        _timer?.Dispose();
        _usr1?.Dispose();
        lock (_lock)
        {
            if (_show && !_finished && _inPlace && _shown >= 0)
            {
                // Interrupted or failed: end the progress line so the error starts on its own.
                Console.Out.Write("\n");
                Console.Out.Flush();
            }

            _finished = true;
        }
    }

    private void Update()
    {
        lock (_lock)
        {
            if (!_finished)
            {
                Render(_work.Percent);
            }
        }
    }

    private void Render(double percent)
    {
        if (_inPlace)
        {
            if (percent != _shown)
            {
                _shown = percent;
                Console.Out.Write(Line(percent) + "\r");
            }
        }
        else
        {
            // Every tenth gets its line, even when the work jumped past several between ticks.
            double step = Math.Floor(percent / 10) * 10;
            for (double next = _shown < 0 ? 0 : _shown + 10; next <= step; next += 10)
            {
                _shown = next;
                Console.Out.Write(Line(next) + "\n");
            }
        }

        Console.Out.Flush();
    }

    private static string Line(double percent) =>
        string.Create(CultureInfo.InvariantCulture, $"    ({percent:0.00}/100%)");
}
