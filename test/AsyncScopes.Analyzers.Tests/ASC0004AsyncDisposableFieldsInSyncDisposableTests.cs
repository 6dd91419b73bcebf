namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0004AsyncDisposableFieldsInSyncDisposable>;
using VerifyFix = Verify<ASC0004AsyncDisposableFieldsInSyncDisposable, ASC0004AsyncDisposableFieldsInSyncDisposableFix>;

public sealed class ASC0004AsyncDisposableFieldsInSyncDisposableTests
{
    private const string Usings = """
        using System;
        using System.Data.Common;
        using System.IO;
        using System.Threading;
        using System.Threading.Tasks;
        using AsyncScopes;

        """;

    // Positive cases.

    [Fact]
    public async Task A_repository_disposing_its_connection_synchronously_is_reported_with_the_field()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class {|#0:OrderRepository|} : IDisposable
            {
                private readonly DbConnection _connection;
                public OrderRepository(DbConnection connection) => _connection = connection;
                public void Dispose() => _connection.Dispose();
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("OrderRepository", "'_connection'"));
    }

    [Fact]
    public async Task A_log_sink_disposing_a_file_stream_in_Dispose_bool_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class [|LogSink|] : IDisposable
            {
                private readonly FileStream _file = new("app.log", FileMode.Append);

                protected virtual void Dispose(bool disposing)
                {
                    if (disposing)
                    {
                        _file.Dispose();
                    }
                }

                public void Dispose()
                {
                    Dispose(true);
                    GC.SuppressFinalize(this);
                }
            }
            """);
    }

    [Fact]
    public async Task A_background_queue_disposing_its_journal_with_a_null_conditional_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class [|MailOutbox|] : IDisposable
            {
                private readonly WorkQueue<string> _queue = new((mail, ct) => Task.CompletedTask);
                private StreamWriter? _journal = new(Stream.Null);

                public void Enqueue(string mail)
                {
                    _journal?.WriteLine(mail);
                    _queue.TryEnqueue(mail);
                }

                public void Dispose() => _journal?.Dispose();
            }
            """);
    }

    [Fact]
    public async Task An_auto_property_holding_a_transaction_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class [|UnitOfWork|] : IDisposable
            {
                public UnitOfWork(DbTransaction transaction) => Transaction = transaction;
                public DbTransaction Transaction { get; }
                public void Dispose() => Transaction.Dispose();
            }
            """);
    }

    [Fact]
    public async Task A_struct_disposing_a_reader_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            struct [|OpenQuery|] : IDisposable
            {
                private readonly DbDataReader _reader;
                public OpenQuery(DbDataReader reader) => _reader = reader;
                public void Dispose() => _reader.Dispose();
            }
            """);
    }

    [Fact]
    public async Task A_struct_disposing_a_command_is_not_reported()
    {
        // No provider's DbCommand does asynchronous work when disposed.
        await VerifyCS.DiagnosticsAsync(Usings + """
            struct PreparedQuery : IDisposable
            {
                private readonly DbCommand _command;
                public PreparedQuery(DbCommand command) => _command = command;
                public void Dispose() => _command.Dispose();
            }
            """);
    }

    [Fact]
    public async Task Several_async_disposable_fields_are_named_in_one_report()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class {|#0:ExportJob|} : IDisposable
            {
                private readonly Stream _input = File.OpenRead("in.csv");
                private readonly Stream _output = File.Create("out.csv");

                public void Dispose()
                {
                    _output.Dispose();
                    _input.Dispose();
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("ExportJob", "'_input', '_output'"));
    }

    // Negative cases.

    [Fact]
    public async Task A_type_that_is_already_async_disposable_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class OrderRepository(DbConnection connection) : IDisposable, IAsyncDisposable
            {
                public void Dispose() => connection.Dispose();
                public ValueTask DisposeAsync() => connection.DisposeAsync();
            }
            """);
    }

    [Fact]
    public async Task Fields_whose_DisposeAsync_is_synchronous_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class ReportBuilder : IDisposable
            {
                private readonly MemoryStream _buffer = new();
                private readonly StringWriter _text = new();
                private readonly CancellationTokenSource _cancel = new();

                public void Dispose()
                {
                    _buffer.Dispose();
                    _text.Dispose();
                    _cancel.Dispose();
                }
            }
            """);
    }

    [Fact]
    public async Task An_async_disposable_field_the_type_does_not_dispose_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class OrderReader : IDisposable
            {
                private readonly DbConnection _shared;
                private readonly CancellationTokenSource _cancel = new();
                public OrderReader(DbConnection shared) => _shared = shared;
                public void Dispose() => _cancel.Dispose();
            }
            """);
    }

    [Fact]
    public async Task A_type_that_is_not_disposable_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Exporter
            {
                private readonly Stream _output = Stream.Null;
                public void Close() => _output.Dispose();
            }
            """);
    }

    [Fact]
    public async Task Disposing_a_parameter_or_another_object_s_field_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Relay : IDisposable
            {
                private readonly Relay? _next;
                private readonly Stream _stream = Stream.Null;
                public void Dispose() { }
                public void Close(Stream other) { other.Dispose(); _next?._stream.Dispose(); }
            }
            """);
    }

    [Fact]
    public async Task Static_fields_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class SharedLog : IDisposable
            {
                private static readonly Stream Log = Stream.Null;
                public void Dispose() => Log.Dispose();
            }
            """);
    }

    // The fix.

    [Fact]
    public async Task The_fix_adds_IAsyncDisposable_with_a_DisposeAsync_awaiting_each_field_then_calling_Dispose()
    {
        await VerifyFix.FixAsync(
            Usings + """
            sealed class [|ExportJob|] : IDisposable
            {
                private readonly Stream _input = File.OpenRead("in.csv");
                private Stream? _output;

                public void Dispose()
                {
                    _output?.Dispose();
                    _input.Dispose();
                }

                public void Open() => _output = File.Create("out.csv");
            }
            """,
            Usings + """
            sealed class ExportJob : IDisposable, IAsyncDisposable
            {
                private readonly Stream _input = File.OpenRead("in.csv");
                private Stream? _output;

                public void Dispose()
                {
                    _output?.Dispose();
                    _input.Dispose();
                }

                public async ValueTask DisposeAsync()
                {
                    await _input.DisposeAsync();
                    if (_output is not null)
                    {
                        await _output.DisposeAsync();
                    }

                    Dispose();
                }

                public void Open() => _output = File.Create("out.csv");
            }
            """);
    }

    [Fact]
    public async Task The_fix_extends_the_base_list_of_a_type_that_inherits_IDisposable()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class Base : IDisposable
            {
                public virtual void Dispose() { }
            }

            sealed class [|Exporter|] : Base
            {
                private readonly FileStream _output = File.Create("export.csv");

                public override void Dispose()
                {
                    _output.Dispose();
                    base.Dispose();
                }
            }
            """,
            Usings + """
            class Base : IDisposable
            {
                public virtual void Dispose() { }
            }

            sealed class Exporter : Base, IAsyncDisposable
            {
                private readonly FileStream _output = File.Create("export.csv");

                public override void Dispose()
                {
                    _output.Dispose();
                    base.Dispose();
                }

                public async ValueTask DisposeAsync()
                {
                    await _output.DisposeAsync();
                    Dispose();
                }
            }
            """);
    }

    [Fact]
    public async Task A_field_typed_Stream_given_only_streams_known_as_Stream_is_not_reported()
    {
        // MySqlConnector's StreamByteHandler: it wraps the stream it is given, a socket's.
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class StreamByteHandler(Stream stream) : IDisposable
            {
                private readonly Stream _stream = stream;

                public int Read(byte[] buffer) => _stream.Read(buffer, 0, buffer.Length);

                public void Dispose() => _stream.Dispose();
            }
            """);
    }
}
