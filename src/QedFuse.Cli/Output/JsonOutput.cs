using System.Text.Json;

namespace QedFuse.Cli.Output;

/// <summary>JSON on stdout indented by four spaces, as qemu-img prints it.</summary>
internal static class JsonOutput
{
    public static void Write(Action<Utf8JsonWriter> body)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var w = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true, IndentSize = 4 }))
        {
            body(w);
        }

        stdout.Write("\n"u8);
    }
}
