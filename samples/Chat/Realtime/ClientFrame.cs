namespace Chat.Realtime;

/// <summary>A frame a WebSocket client sends: <c>{"text": "..."}</c>, or <c>{"type": "pong"}</c> to a ping.</summary>
internal sealed record ClientFrame(string? Type, string? Text);
