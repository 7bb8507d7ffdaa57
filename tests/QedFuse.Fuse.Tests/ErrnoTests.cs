namespace QedFuse.Fuse.Tests;

public class ErrnoTests
{
    [Fact]
    public void Exceptions_map_to_errno()
    {
        Assert.Equal(Errno.ENOSPC, Errno.FromException(new IOException("full", Errno.ENOSPC)));
        Assert.Equal(Errno.EIO, Errno.FromException(new IOException("plain")));          // HResult is a COR_E_* value
        Assert.Equal(Errno.EIO, Errno.FromException(new IOException("big", 5000)));      // not an errno
        Assert.Equal(Errno.EINVAL, Errno.FromException(new ArgumentOutOfRangeException("x")));
        Assert.Equal(Errno.EIO, Errno.FromException(new InvalidOperationException()));
        Assert.Equal(Errno.EIO, Errno.FromException(new NullReferenceException()));
    }

    [Fact]
    public void Results_outside_the_errno_range_become_EIO()
    {
        Assert.Equal(Errno.ENOENT, Errno.FromResult(-Errno.ENOENT));
        Assert.Equal(Errno.EIO, Errno.FromResult(-5000));
        Assert.Equal(Errno.EIO, Errno.FromResult(long.MinValue));
    }
}
