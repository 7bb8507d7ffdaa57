using QedFuse.Block;

namespace QedFuse.Cli.Mount;

/// <summary>
/// Every interval, brings each writable image's on-disk metadata up to date and, when it is
/// idle, marks it clean (need-check cleared), so a crash loses at most one interval of
/// un-fsynced writes and rarely leaves an image to repair.
/// </summary>
internal sealed class BackgroundFlusher : IDisposable
{
    private readonly IReadOnlyList<IBlockImage> _images;
    private readonly TimeSpan _interval;
    private readonly ManualResetEventSlim _stop = new();
    private readonly Thread _thread;

    public BackgroundFlusher(IReadOnlyList<IBlockImage> images, TimeSpan interval)
    {
        _images = images.Where(i => !i.IsReadOnly).ToList();
        _interval = interval;
        _thread = new Thread(Loop) { IsBackground = true, Name = "metadata-flusher" };
    }

    public void Start()
    {
        if (_images.Count > 0 && _interval > TimeSpan.Zero)
        {
            _thread.Start();
        }
    }

    public void Dispose()
    {
        _stop.Set();
        if (_thread.IsAlive)
        {
            _thread.Join();
        }

        _stop.Dispose();
    }

    private void Loop()
    {
        while (!_stop.Wait(_interval))
        {
            foreach (IBlockImage image in _images)
            {
                try
                {
                    image.Checkpoint();
                }
                catch (ImageFailedException)
                {
                    // Logged once when the image failed; it takes no more flushes.
                }
                catch (Exception e)
                {
                    Log.Error($"{image.Path}: background flush failed: {e.Message} (will retry)");
                }
            }
        }
    }
}
