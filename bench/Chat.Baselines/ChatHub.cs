using System.Collections.Concurrent;
using Microsoft.AspNetCore.SignalR;

namespace Chat.Baselines;

/// <summary>A message as the hub broadcasts it.</summary>
internal sealed record ChatMessage(long Id, string Room, string Name, string Text, DateTimeOffset At);

/// <summary>The rooms' ids and locks: one message of a room is broadcast at a time, so every client sees a room's
/// messages in id order.</summary>
internal sealed class SignalRRooms
{
    private readonly ConcurrentDictionary<string, RoomState> _rooms = new(StringComparer.Ordinal);

    public RoomState this[string room] => _rooms.GetOrAdd(room, static _ => new RoomState());

    internal sealed class RoomState
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        public long LastId { get; set; }
    }
}

/// <summary>
/// The same chat as a SignalR hub: a client joins the room of its query string; <see cref="Send"/> returns the
/// message's id, which is the ack, once the message is on its way to every client of the room (SignalR's own bounded
/// output pipe per connection is the send queue).
/// </summary>
internal sealed class ChatHub(SignalRRooms rooms) : Hub
{
    public override async Task OnConnectedAsync()
    {
        HttpContext http = Context.GetHttpContext()!;
        string room = http.Request.Query["room"].ToString();
        Context.Items["room"] = room;
        Context.Items["name"] = http.Request.Query["name"].ToString();
        await Groups.AddToGroupAsync(Context.ConnectionId, room);
    }

    public async Task<long> Send(string text)
    {
        string room = (string)Context.Items["room"]!;
        SignalRRooms.RoomState state = rooms[room];
        await state.Gate.WaitAsync();
        try
        {
            long id = ++state.LastId;
            await Clients.Group(room).SendAsync("message", new ChatMessage(id, room, (string)Context.Items["name"]!, text, DateTimeOffset.UtcNow));
            return id;
        }
        finally
        {
            state.Gate.Release();
        }
    }
}
