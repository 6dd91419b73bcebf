using System.Text;

namespace BenchReport;

/// <summary>
/// CSV as RFC 4180 has it and BenchmarkDotNet's CsvExporter writes it: comma-separated, a field in double quotes when
/// it holds a comma, a quote or a line break, a quote inside such a field doubled. Anything else is rejected rather
/// than guessed at.
/// </summary>
internal static class Csv
{
    public static List<string[]> Parse(string text, string source)
    {
        var rows = new List<string[]>();
        var row = new List<string>();
        var field = new StringBuilder();
        bool inQuotes = false;
        bool wasQuoted = false;
        int line = 1;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (inQuotes)
            {
                if (c != '"')
                {
                    line += c == '\n' ? 1 : 0;
                    field.Append(c);
                }
                else if (i + 1 < text.Length && text[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else
                {
                    inQuotes = false;
                    wasQuoted = true;
                }
            }
            else if (c == ',')
            {
                EndField();
            }
            else if (c == '\n' || (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n'))
            {
                i += c == '\r' ? 1 : 0;
                EndField();
                rows.Add([.. row]);
                row.Clear();
                line++;
            }
            else if (c == '"' && field.Length == 0 && !wasQuoted)
            {
                inQuotes = true;
            }
            else if (c == '"' || wasQuoted)
            {
                throw new InvalidDataException($"{source}, line {line}: a quote where RFC 4180 allows none.");
            }
            else
            {
                field.Append(c);
            }
        }

        if (inQuotes)
        {
            throw new InvalidDataException($"{source}: a quoted field is not closed.");
        }

        if (field.Length > 0 || wasQuoted || row.Count > 0)
        {
            EndField();
            rows.Add([.. row]);
        }

        return rows;

        void EndField()
        {
            row.Add(field.ToString());
            field.Clear();
            wasQuoted = false;
        }
    }
}
