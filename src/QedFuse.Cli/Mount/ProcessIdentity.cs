namespace QedFuse.Cli.Mount;

/// <summary>The effective uid and gid of this process, which own the files the mount shows.</summary>
internal static class ProcessIdentity
{
    public static (uint Uid, uint Gid) Current()
    {
        uint uid = 0, gid = 0;
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            // "Uid:\treal\teffective\tsaved\tfs"
            string[] f = line.Split('\t', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length > 2 && f[0] == "Uid:")
            {
                uid = uint.Parse(f[2]);
            }
            else if (f.Length > 2 && f[0] == "Gid:")
            {
                gid = uint.Parse(f[2]);
            }
        }

        return (uid, gid);
    }
}
