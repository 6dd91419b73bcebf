using Chat.Baselines;

// The baselines the reference service's throughput is measured against, each an in-memory chat server with the same
// wire semantics (rooms, an ack per message, a broadcast to every client of the room in id order, one bounded send
// queue per connection) and no storage:
//
//   dotnet Chat.Baselines.dll raw --urls=http://127.0.0.1:0       a WebSocket server written by hand, /ws/rooms/{room}
//   dotnet Chat.Baselines.dll signalr --urls=http://127.0.0.1:0   a SignalR hub, /hub?room=...&name=...
//
// bench/Chat.Load starts them and drives them as it drives the service.
string server = args.FirstOrDefault() ?? string.Empty;
WebApplicationBuilder builder = WebApplication.CreateBuilder(args.Skip(1).ToArray());
builder.Logging.ClearProviders().AddSimpleConsole().SetMinimumLevel(LogLevel.Warning)
    .AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information); // "Now listening on: ..."
switch (server)
{
    case "raw":
        builder.Services.AddSingleton<RawChatServer>();
        break;
    case "signalr":
        builder.Services.AddSignalR();
        builder.Services.AddSingleton<SignalRRooms>();
        break;
    default:
        Console.Error.WriteLine("Usage: Chat.Baselines raw|signalr [--urls=http://127.0.0.1:0]");
        return 2;
}

WebApplication app = builder.Build();
if (server == "raw")
{
    app.UseWebSockets();
    app.Map("/ws/rooms/{room}", (HttpContext context, string room, RawChatServer chat) => chat.AcceptAsync(context, room));
}
else
{
    app.MapHub<ChatHub>("/hub");
}

await app.RunAsync();
return 0;
