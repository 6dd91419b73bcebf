namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0010AsyncVoid>;
using VerifyFix = Verify<ASC0010AsyncVoid, ASC0010AsyncVoidFix>;

public sealed class ASC0010AsyncVoidTests
{
    private const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Net.WebSockets;
        using System.Threading;
        using System.Threading.Tasks;

        """;

    // Positive cases.

    [Fact]
    public async Task An_async_void_method_that_starts_a_listener_is_reported_with_its_name()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class Listener
            {
                public async void {|#0:StartListening|}(WebSocket socket, CancellationToken ct)
                {
                    var buffer = new byte[1024];
                    while (!ct.IsCancellationRequested)
                    {
                        await socket.ReceiveAsync(buffer, ct);
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("'StartListening' is async void", "nobody can await it or see its failure; return Task and await it"));
    }

    [Fact]
    public async Task An_async_void_Dispose_is_reported_as_returning_before_the_disposal_is_done()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Session(WebSocket socket) : IDisposable
            {
                public async void {|#0:Dispose|}()
                {
                    await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                    socket.Dispose();
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("'async void Dispose' returns before the disposal is done", "nobody can await it or see its failure; return Task and await it"));
    }

    [Fact]
    public async Task An_async_void_local_function_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Uploader
            {
                public void Start(Func<Task> upload)
                {
                    Run();

                    async void [|Run|]() => await upload();
                }
            }
            """);
    }

    [Fact]
    public async Task An_async_lambda_given_to_CancellationToken_Register_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class Connection(WebSocket socket)
            {
                public void CloseOn(CancellationToken stop) =>
                    stop.Register({|#0:async|} () => await socket.CloseAsync(WebSocketCloseStatus.EndpointUnavailable, null, CancellationToken.None));
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "An async lambda runs as async void",
                "'CancellationToken.Register' takes it as a delegate of type 'Action': nobody awaits it or sees its failure; pass a Func<Task> where one is taken, or start the work where it is awaited"));
    }

    [Fact]
    public async Task An_async_timer_callback_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Heartbeat(Func<Task> ping)
            {
                public Timer Start() => new Timer([|async|] _ => await ping(), null, TimeSpan.Zero, TimeSpan.FromSeconds(15));
            }
            """);
    }

    [Fact]
    public async Task An_async_lambda_given_to_List_ForEach_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Broadcaster
            {
                public void SendAll(List<WebSocket> sockets, byte[] frame) =>
                    sockets.ForEach([|async|] socket => await socket.SendAsync(frame, WebSocketMessageType.Text, true, CancellationToken.None));
            }
            """);
    }

    [Fact]
    public async Task An_async_process_exit_handler_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            static class Flush
            {
                public static void OnExit(Func<Task> flush) =>
                    AppDomain.CurrentDomain.ProcessExit += [|async|] (_, _) => await flush();
            }
            """);
    }

    [Fact]
    public async Task An_async_lambda_kept_as_an_Action_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Shutdown(Func<Task> drain)
            {
                private readonly Action _onStop = [|async|] () => await drain();

                public void Stop() => _onStop();
            }
            """);
    }

    // Negative cases.

    [Fact]
    public async Task Async_void_overrides_and_interface_methods_a_framework_calls_are_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            abstract class Page
            {
                protected abstract void OnAppearing();
            }

            interface ICommand
            {
                void Execute(object? parameter);
            }

            sealed class OrdersPage(Func<Task> load) : Page, ICommand
            {
                protected override async void OnAppearing() => await load();

                public async void Execute(object? parameter) => await load();
            }
            """);
    }

    [Fact]
    public async Task A_handler_of_an_event_of_another_delegate_type_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Connection
            {
                public event Action<string>? Message;
            }

            class Chat(Connection connection, Func<string, Task> show)
            {
                public void Attach() => connection.Message += OnMessage;

                private async void OnMessage(string text) => await show(text);
            }
            """);
    }


    [Fact]
    public async Task An_async_void_event_handler_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Form(Func<Task> save)
            {
                public async void OnSaveClicked(object sender, EventArgs e) => await save();
            }
            """);
    }

    [Fact]
    public async Task An_async_handler_of_a_derived_event_args_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class ConsoleHost(Func<Task> stop)
            {
                public void Attach() => Console.CancelKeyPress += OnCancel;

                private async void OnCancel(object? sender, ConsoleCancelEventArgs e) => await stop();
            }
            """);
    }

    [Fact]
    public async Task An_async_lambda_subscribed_to_an_ordinary_event_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Button
            {
                public event EventHandler? Click;
            }

            class Page(Button button, Func<Task> refresh)
            {
                public void Wire() => button.Click += async (_, _) => await refresh();
            }
            """);
    }

    [Fact]
    public async Task An_async_Task_method_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Listener
            {
                public async Task ListenAsync(WebSocket socket, CancellationToken ct) =>
                    await socket.ReceiveAsync(new byte[16], ct);
            }
            """);
    }

    [Fact]
    public async Task An_async_lambda_given_to_Task_Run_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Worker(Func<Task> work)
            {
                public Task StartAsync() => Task.Run(async () => await work());
            }
            """);
    }

    [Fact]
    public async Task An_async_lambda_given_as_a_Func_of_ValueTask_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Retry
            {
                public static async ValueTask RunAsync(Func<ValueTask> attempt) => await attempt();

                public ValueTask PingAsync(Func<Task> ping) => RunAsync(async () => await ping());
            }
            """);
    }

    [Fact]
    public async Task A_void_method_that_is_not_async_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Counter
            {
                private int _count;

                public void Increment() => Interlocked.Increment(ref _count);
            }
            """);
    }

    [Fact]
    public async Task An_async_lambda_whose_task_a_delegate_returns_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Pipeline
            {
                private readonly List<Func<CancellationToken, Task>> _steps = new();

                public void Add(Func<Task> step) => _steps.Add(async ct => await step());
            }
            """);
    }

    // The fix.

    [Fact]
    public async Task The_fix_makes_an_async_void_method_return_Task()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class Listener
            {
                public async void [|StartListening|](WebSocket socket, CancellationToken ct)
                {
                    await socket.ReceiveAsync(new byte[16], ct);
                }
            }
            """,
            Usings + """
            class Listener
            {
                public async Task StartListening(WebSocket socket, CancellationToken ct)
                {
                    await socket.ReceiveAsync(new byte[16], ct);
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_makes_an_async_void_local_function_return_Task()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class Uploader
            {
                public void Start(Func<Task> upload)
                {
                    Run();

                    async void [|Run|]() => await upload();
                }
            }
            """,
            Usings + """
            class Uploader
            {
                public void Start(Func<Task> upload)
                {
                    Run();

                    async Task Run() => await upload();
                }
            }
            """);
    }

    [Fact]
    public async Task An_async_void_method_used_as_a_timer_callback_is_reported_without_a_fix()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class Heartbeat(Func<Task> ping)
            {
                public Timer Start() => new Timer(OnTick, null, 0, 1000);

                private async void [|OnTick|](object? state) => await ping();
            }
            """,
            Usings + """
            class Heartbeat(Func<Task> ping)
            {
                public Timer Start() => new Timer(OnTick, null, 0, 1000);

                private async void [|OnTick|](object? state) => await ping();
            }
            """);
    }
}
