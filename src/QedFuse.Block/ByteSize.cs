using System.Globalization;

namespace QedFuse.Block;

/// <summary>Sizes as qemu-img writes them: bytes, or a number with a K/M/G/T/P/E suffix (powers of 1024).</summary>
public static class ByteSize
{
    private const string Suffixes = "BKMGTPE";

    /// <summary>Parses "10G", "1.5M", "4096", "512b"; null when the text is not a size.</summary>
    public static long? TryParse(string text)
    {
        string t = text.Trim();
        if (t.Length == 0)
        {
            return null;
        }

        int shift = 0;
        int suffix = Suffixes.IndexOf(char.ToUpperInvariant(t[^1]));
        if (suffix >= 0)
        {
            shift = suffix * 10;
            t = t[..^1];
        }

        if (t.Length == 0 || t.StartsWith('-') || t.StartsWith('+')
            || !decimal.TryParse(t, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal n))
        {
            return null;
        }

        decimal bytes = n * (1L << shift);
        return bytes > long.MaxValue || bytes != decimal.Truncate(bytes) ? null : (long)bytes;
    }

    /// <summary>"64 KiB", "10 GiB", "1000 B": the way qemu-img info prints sizes.</summary>
    public static string Format(long bytes)
    {
        if (bytes < 1024)
        {
            return $"{bytes} B";
        }

        int unit = 0;
        double v = bytes;
        while (v >= 1024 && unit < Suffixes.Length - 1)
        {
            v /= 1024;
            unit++;
        }

        string number = v.ToString(v < 10 ? "0.##" : v < 100 ? "0.#" : "0", CultureInfo.InvariantCulture);
        return $"{number} {Suffixes[unit]}iB";
    }
}
