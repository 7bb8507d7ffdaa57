namespace QedFuse.Fuse;

/// <summary>File type bits of st_mode (Linux values).</summary>
public static class FuseMode
{
    public const uint TypeMask = 0xF000;
    public const uint Directory = 0x4000;
    public const uint Regular = 0x8000;
}
