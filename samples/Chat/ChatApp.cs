using Chat.Api;
using Chat.Realtime;
using Chat.Security;
using Chat.Storage;
using Chat.Telemetry;
using Chat.Webhooks;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Chat;

/// <summary>Builds the service: configuration, services, endpoints.</summary>
internal static class ChatApp
{
    /// <summary>Where the service listens unless <c>--urls</c> (or <c>ASPNETCORE_URLS</c>) says otherwise.</summary>
    public const string DefaultUrl = "http://127.0.0.1:5080";

    /// <summary>The host names the service answers to unless the setting <c>AllowedHosts</c> says otherwise: its
    /// loopback names. A request for any other (a name an attacker rebound to this address) gets 400.</summary>
    public const string DefaultAllowedHosts = "localhost;127.0.0.1;[::1]";

    /// <param name="args">Command-line arguments: <c>--urls</c>, and any setting, such as
    /// <c>--Database:Path=other.db</c> or <c>--Chat:HeartbeatInterval=00:00:05</c>.</param>
    /// <param name="configure">Changes to the services before the app is built; the tests replace the clock and add
    /// a <see cref="IMessageWriteHook"/> here.</param>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        // The content root is where the service is, not the working directory: its appsettings.json is found wherever
        // it is started from.
        WebApplicationBuilder builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
        });

        // First, so that every other source (appsettings.json, the environment, the command line) overrides it.
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource
        {
            InitialData =
            [
                new("AllowedHosts", DefaultAllowedHosts),

                // The request log names every URL with its query, where a WebSocket's access_token is.
                new("Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics", "Warning"),
            ],
        });
        if (string.IsNullOrEmpty(builder.Configuration["urls"]))
        {
            builder.WebHost.UseUrls(DefaultUrl);
        }

        AddValidatedOptions<ChatOptions>(builder, ChatOptions.Section, options => options.Validate());
        AddValidatedOptions<DatabaseOptions>(builder, DatabaseOptions.Section, options => options.Validate());
        AddValidatedOptions<WebhookOptions>(builder, WebhookOptions.Section, options => options.Validate());
        AddValidatedOptions<SecurityOptions>(builder, SecurityOptions.Section, options => options.Validate());
        AddValidatedOptions<TelemetryOptions>(builder, TelemetryOptions.Section, options => options.Validate());
        builder.AddChatTelemetry();

        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<CallerChecks>();
        builder.Services.AddSingleton<AdminKey>();
        builder.Services.AddAuthentication()
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, AdminKeyHandler>(AdminKey.Scheme, configureOptions: null)
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, ClientKeyHandler>(ClientKeys.Scheme, configureOptions: null);
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(AdminKey.Scheme, policy => policy.AddAuthenticationSchemes(AdminKey.Scheme).RequireAuthenticatedUser());
        builder.Services.AddOptions<Microsoft.AspNetCore.Authorization.AuthorizationOptions>()
            .Configure<IOptions<SecurityOptions>>((authorization, security) => ClientKeys.AddPolicy(authorization, security.Value));
        builder.Services.AddChatStorage();
        builder.Services.AddChatRealtime();
        builder.Services.AddSingleton<ChatService>();
        builder.Services.AddHostedService(services => services.GetRequiredService<ChatService>());

        // After the chat service: the host creates the dispatcher after it (and the database's pools it needs), so
        // the container, which disposes last made first, disposes the dispatcher while the store still works, even
        // when the host is disposed without a stop (a start that failed after the dispatcher started).
        builder.Services.AddChatWebhooks();
        builder.Services.AddOptions<HostOptions>().Configure<IOptions<ChatOptions>>(
            (host, chat) => host.ShutdownTimeout = chat.Value.ShutdownTimeout);
        builder.Services.AddOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>().Configure<IOptions<ChatOptions>>(
            (kestrel, chat) =>
            {
                kestrel.Limits.MaxRequestBodySize = chat.Value.MaxRequestBodyBytes;
                kestrel.Limits.MaxConcurrentConnections = chat.Value.MaxConnections;
                kestrel.Limits.MaxConcurrentUpgradedConnections = chat.Value.MaxWebSockets;
            });
        builder.Services.AddWriteRateLimit();
        builder.Services.AddHealthChecks()
            .AddCheck<DatabaseHealthCheck>("database")
            .AddCheck<ConnectionsHealthCheck>("connections");
        configure?.Invoke(builder);

        WebApplication app = builder.Build();
        app.UseExceptionHandler(new ExceptionHandlerOptions { ExceptionHandler = ChatEndpoints.WriteFailureAsync });
        app.Use(SecurityHeaders.AddAsync);
        app.UseStatusCodePages(ChatEndpoints.WriteStatusCodeAsync);
        app.Use(FrameCountingStream.Install); // before the WebSocket middleware takes the upgrade
        app.UseWebSockets();
        app.Use(app.Services.GetRequiredService<CallerChecks>().InvokeAsync);
        app.UseRateLimiter(); // first: a wrong admin key spends the caller's budget too
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapChat();
        return app;
    }

    private static void AddValidatedOptions<T>(WebApplicationBuilder builder, string section, Func<T, IEnumerable<string>> validate)
        where T : class
    {
        builder.Services.AddOptions<T>()
            .Bind(builder.Configuration.GetSection(section))
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<T>>(new ListedValidation<T>(validate));
    }

    /// <summary>Fails validation with every problem of the settings, each in words.</summary>
    private sealed class ListedValidation<T>(Func<T, IEnumerable<string>> validate) : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? name, T options)
        {
            List<string> errors = [.. validate(options)];
            return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
        }
    }
}
