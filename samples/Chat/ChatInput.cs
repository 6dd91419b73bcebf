namespace Chat;

/// <summary>The rules for names, rooms and message texts; each check returns null when the input is valid, else what
/// is wrong with it, in words a client can show.</summary>
internal static class ChatInput
{
    public const int MaxNameLength = 32;
    public const int MaxRoomLength = 32;

    /// <summary>A room: 1 to 32 ASCII letters, digits, '-' or '_', starting with a letter or digit.</summary>
    public static string? CheckRoom(string? room)
    {
        if (string.IsNullOrEmpty(room))
        {
            return "A room name is required.";
        }

        if (room.Length > MaxRoomLength)
        {
            return $"A room name has at most {MaxRoomLength} characters.";
        }

        if (!char.IsAsciiLetterOrDigit(room[0]) || !room.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            return "A room name has only letters, digits, '-' and '_' (ASCII), and starts with a letter or digit.";
        }

        return null;
    }

    /// <summary>A name: 1 to 32 letters, digits, spaces, '-', '_' or '.', not starting or ending with a space.</summary>
    public static string? CheckName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            return "A name is required.";
        }

        if (name.Length > MaxNameLength)
        {
            return $"A name has at most {MaxNameLength} characters.";
        }

        if (name[0] == ' ' || name[^1] == ' ' || !name.All(c => char.IsLetterOrDigit(c) || c is ' ' or '-' or '_' or '.'))
        {
            return "A name has only letters, digits, spaces, '-', '_' and '.', and does not start or end with a space.";
        }

        return null;
    }

    /// <summary>A message text: not blank, at most <paramref name="maxLength"/> characters, no control characters but
    /// line breaks and tabs.</summary>
    public static string? CheckText(string? text, int maxLength)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return "A message needs a text.";
        }

        if (text.Length > maxLength)
        {
            return $"A message has at most {maxLength} characters; this one has {text.Length}.";
        }

        if (text.Any(c => char.IsControl(c) && c is not '\n' and not '\r' and not '\t'))
        {
            return "A message cannot contain control characters other than line breaks and tabs.";
        }

        return null;
    }

    /// <summary>What is wrong with a JSON <paramref name="what"/> (a body, a frame), in words that name where, never the
    /// service's own types (which <see cref="System.Text.Json.JsonException.Message"/> does).</summary>
    public static string DescribeJsonError(System.Text.Json.JsonException exception, string what)
    {
        string where = exception.Path is { Length: > 1 } path ? $" at {path}" : "";
        string line = exception.LineNumber is { } number ? $" (line {number + 1}, byte {exception.BytePositionInLine + 1})" : "";
        return $"{what} is not valid JSON, or not of the expected shape,{where}{line}.";
    }
}
