namespace QedFuse.Fuse;

/// <summary>What /etc/fuse.conf allows, read the way fusermount3 reads it.</summary>
public static class FuseConfig
{
    public const string DefaultPath = "/etc/fuse.conf";

    /// <summary>
    /// Whether a user other than root may mount with allow_other: a line that is exactly
    /// <c>user_allow_other</c> once comments (#...) and surrounding blanks are removed.
    /// </summary>
    public static bool UserAllowOther(string path = DefaultPath)
    {
        try
        {
            return File.ReadLines(path).Any(line => (line.IndexOf('#') is int hash and >= 0 ? line[..hash] : line).Trim() == "user_allow_other");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
