namespace Chat.Realtime;

/// <summary>The WebSocket connections' hub and the hosted scope they run in.</summary>
internal static class RealtimeServices
{
    /// <summary>The key of the connections' scope.</summary>
    public const string Connections = "chat-connections";

    /// <summary>Registers the connections' scope (a hosted scope on the service's clock, which the host stops as it
    /// begins to stop) and the hub (<see cref="ConnectionHub"/>) that runs each connection in it.</summary>
    public static IServiceCollection AddChatRealtime(this IServiceCollection services)
    {
        services.AddHostedTaskScope(Connections).Configure<TimeProvider>((scope, time) => scope.TimeProvider = time);
        services.AddSingleton<ConnectionHub>();
        return services;
    }
}
