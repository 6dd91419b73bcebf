namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0001SyncDisposalInAsyncCode>;
using VerifyFix = Verify<ASC0001SyncDisposalInAsyncCode, ASC0001SyncDisposalInAsyncCodeFix>;

public sealed class ASC0001SyncDisposalInAsyncCodeTests
{
    private const string Usings = """
        using System;
        using System.Data.Common;
        using System.IO;
        using System.Net.WebSockets;
        using System.Threading;
        using System.Threading.Tasks;

        """;

    // Positive cases.

    [Fact]
    public async Task A_service_scope_created_async_but_disposed_synchronously_in_a_hosted_job_is_reported()
    {
        // Coravel's shape: the scope's DisposeAsync awaits the async disposal of the services it created.
        await VerifyCS.DiagnosticsAsync(Usings + """
            using Microsoft.Extensions.DependencyInjection;

            class InvocableRunner(IServiceScopeFactory scopeFactory)
            {
                public async Task RunAsync(Type invocable, CancellationToken ct)
                {
                    using var [|scope = scopeFactory.CreateAsyncScope()|];
                    var job = scope.ServiceProvider.GetService(invocable);
                    await Task.Delay(1, ct);
                }
            }
            """);
    }


    [Fact]
    public async Task A_data_reader_disposed_synchronously_in_an_async_query_is_still_reported()
    {
        // Disposing a reader drains the rows left: that is the I/O its DisposeAsync awaits.
        await VerifyCS.DiagnosticsAsync(Usings + """
            class OrderRepository
            {
                public async Task<string?> FirstNameAsync(DbCommand command, CancellationToken ct)
                {
                    using var [|reader = await command.ExecuteReaderAsync(ct)|];
                    return await reader.ReadAsync(ct) ? reader.GetString(0) : null;
                }
            }
            """);
    }

    [Fact]
    public async Task A_transaction_disposed_with_a_null_conditional_call_in_an_async_method_is_still_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Transfer
            {
                public async Task RunAsync(DbConnection connection, CancellationToken ct)
                {
                    DbTransaction? transaction = null;
                    try
                    {
                        transaction = await connection.BeginTransactionAsync(ct);
                        await transaction.CommitAsync(ct);
                    }
                    finally
                    {
                        [|transaction?.Dispose()|];
                    }
                }
            }
            """);
    }


    [Fact]
    public async Task A_using_declaration_of_a_file_stream_in_an_async_export_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class ReportExporter
            {
                async Task ExportAsync(string path, byte[] report, CancellationToken ct)
                {
                    using var [|file = new FileStream(path, FileMode.Create)|];
                    await file.WriteAsync(report, ct);
                }
            }
            """);
    }

    [Fact]
    public async Task A_using_statement_around_a_repository_connection_is_reported_with_the_variable_in_the_message()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class OrderRepository(Func<DbConnection> connect)
            {
                public async Task<int> CountAsync(CancellationToken ct)
                {
                    using (var {|#0:connection = connect()|})
                    {
                        await connection.OpenAsync(ct);
                        await using var command = connection.CreateCommand();
                        command.CommandText = "SELECT COUNT(*) FROM orders";
                        return Convert.ToInt32(await command.ExecuteScalarAsync(ct));
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("connection", "in an async method", "use 'await using'"));
    }

    [Fact]
    public async Task A_using_of_a_transaction_expression_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class OrderRepository
            {
                public async Task DeleteExpiredAsync(DbConnection connection, CancellationToken ct)
                {
                    using ([|await connection.BeginTransactionAsync(ct)|])
                    {
                        await Task.Delay(1, ct);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_Dispose_call_on_an_async_disposable_session_in_an_async_handler_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Session : IDisposable, IAsyncDisposable
            {
                public void Dispose() { }
                public async ValueTask DisposeAsync() => await Task.Yield();
            }

            class SocketHandler
            {
                public async Task HandleAsync(WebSocket socket, Session session, CancellationToken ct)
                {
                    var buffer = new byte[1024];
                    await socket.ReceiveAsync(buffer, ct);
                    [|session.Dispose()|];
                }
            }
            """);
    }

    [Fact]
    public async Task A_null_conditional_Dispose_in_an_async_lambda_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class BackgroundExport
            {
                public Func<Task> Job(FileStream? output) => async () =>
                {
                    await Task.Yield();
                    [|output?.Dispose()|];
                };
            }
            """);
    }

    [Fact]
    public async Task A_using_declaration_in_an_async_local_function_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class LogArchiver
            {
                public Task ArchiveAsync(string path, string line)
                {
                    return WriteAsync();

                    async Task WriteAsync()
                    {
                        using var [|writer = new StreamWriter(path)|];
                        await writer.WriteLineAsync(line);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_source_type_whose_DisposeAsync_awaits_is_reported_in_a_using()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class MessageBatch : IDisposable, IAsyncDisposable
            {
                private readonly Stream _sink = Stream.Null;
                public void Dispose() => _sink.Flush();
                public async ValueTask DisposeAsync() => await _sink.FlushAsync();
            }

            class Publisher
            {
                public async Task PublishAsync()
                {
                    using var [|batch = new MessageBatch()|];
                    await Task.Yield();
                }
            }
            """);
    }

    [Fact]
    public async Task A_connection_whose_transaction_began_in_a_function_written_to_run_either_way_is_still_reported()
    {
        // Closing it rolls the transaction back when the body failed: a round trip that blocks on the asynchronous path.
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Archive(Func<DbConnection> connect)
            {
                internal async Task MoveAsync(string sql, bool async, CancellationToken ct)
                {
                    using var {|#0:connection = connect()|};
                    if (async)
                    {
                        await connection.OpenAsync(ct).ConfigureAwait(false);
                    }
                    else
                    {
                        connection.Open();
                    }

                    var transaction = async ? await connection.BeginTransactionAsync(ct).ConfigureAwait(false) : connection.BeginTransaction();
                    using var command = connection.CreateCommand();
                    command.Transaction = transaction;
                    command.CommandText = sql;
                    _ = async ? await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false) : command.ExecuteNonQuery();
                    if (async)
                    {
                        await transaction.CommitAsync(ct).ConfigureAwait(false);
                    }
                    else
                    {
                        transaction.Commit();
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("connection", "in an async method", "use 'await using'"));
    }

    // Negative cases.

    [Fact]
    public async Task A_command_declared_as_DbCommand_and_disposed_in_a_finally_of_an_async_query_is_not_reported()
    {
        // Dapper's SqlMapper.Async shape: no provider's DbCommand does asynchronous work when disposed.
        await VerifyCS.DiagnosticsAsync(Usings + """
            static class SqlMapper
            {
                public static async Task<int> ExecuteAsync(DbConnection connection, string sql, CancellationToken ct)
                {
                    DbCommand? cmd = null;
                    try
                    {
                        cmd = connection.CreateCommand();
                        cmd.CommandText = sql;
                        return await cmd.ExecuteNonQueryAsync(ct);
                    }
                    finally
                    {
                        cmd?.Dispose();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_using_declaration_of_a_command_in_an_async_repository_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class OrderRepository
            {
                public async Task<object?> NewestAsync(DbConnection connection, CancellationToken ct)
                {
                    using var command = connection.CreateCommand();
                    command.CommandText = "SELECT MAX(id) FROM orders";
                    return await command.ExecuteScalarAsync(ct);
                }
            }
            """);
    }

    [Fact]
    public async Task A_providers_command_type_that_inherits_DbCommands_disposal_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            using System.Data;

            abstract class ProviderCommand : DbCommand
            {
            }

            class AuditLog(Func<ProviderCommand> create)
            {
                public async Task WriteAsync(string line, CancellationToken ct)
                {
                    using (ProviderCommand command = create())
                    {
                        command.CommandText = "INSERT INTO audit (line) VALUES (@line)";
                        await command.ExecuteNonQueryAsync(ct);
                    }
                }
            }
            """);
    }


    [Fact]
    public async Task A_memory_stream_inherits_the_synchronous_DisposeAsync_of_Stream_and_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class Exporter
            {
                async Task<byte[]> ExportAsync(byte[] data)
                {
                    using var buffer = new MemoryStream();
                    await buffer.WriteAsync(data);
                    using var text = new StringWriter();
                    await text.WriteAsync("done");
                    return buffer.ToArray();
                }
            }
            """);
    }

    [Fact]
    public async Task A_stream_assigned_in_a_using_statement_and_only_read_is_not_reported()
    {
        // The same stream declared by the using is not reported (nothing written, nothing to flush); assigned to a
        // local declared before it, it is the same stream.
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Checksums
            {
                public async Task<int> FirstBlockAsync(string path, byte[] buffer, CancellationToken ct)
                {
                    FileStream stream;
                    using (stream = File.OpenRead(path))
                    {
                        return await stream.ReadAsync(buffer, ct);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task Await_using_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class ReportExporter
            {
                async Task ExportAsync(string path, byte[] report, CancellationToken ct)
                {
                    await using var file = new FileStream(path, FileMode.Create);
                    await file.WriteAsync(report, ct);
                    await using (var copy = new FileStream(path + ".bak", FileMode.Create))
                    {
                        await copy.WriteAsync(report, ct);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_using_in_a_synchronous_method_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class ReportExporter
            {
                void Export(string path, byte[] report)
                {
                    using var file = new FileStream(path, FileMode.Create);
                    file.Write(report);
                }
            }
            """);
    }

    [Fact]
    public async Task A_Dispose_inside_a_lock_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class ConnectionRegistry
            {
                private readonly object _gate = new();
                private Stream? _current;

                public async Task ReplaceAsync(Stream next)
                {
                    await Task.Yield();
                    lock (_gate)
                    {
                        _current?.Dispose();
                        _current = next;
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_source_type_whose_DisposeAsync_returns_a_completed_task_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Lease : IDisposable, IAsyncDisposable
            {
                public void Dispose() { }
                public ValueTask DisposeAsync()
                {
                    Dispose();
                    return ValueTask.CompletedTask;
                }
            }

            class Worker
            {
                public async Task RunAsync()
                {
                    using var lease = new Lease();
                    await Task.Yield();
                }
            }
            """);
    }

    [Fact]
    public async Task A_cancellation_registration_and_a_semaphore_lock_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            using AsyncScopes;

            class QueueConsumer
            {
                private readonly SemaphoreSlim _gate = new(1, 1);

                public async Task ConsumeAsync(CancellationToken ct)
                {
                    using var registration = ct.Register(() => { });
                    using (await _gate.LockAsync(ct))
                    {
                        await Task.Delay(1, ct);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_type_disposing_itself_from_an_async_method_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Channel : IDisposable, IAsyncDisposable
            {
                public void Dispose() { }
                public async ValueTask DisposeAsync() => await Task.Yield();

                public async Task FailAsync()
                {
                    await Task.Yield();
                    this.Dispose();
                    Dispose();
                }
            }
            """);
    }

    // The fix.

    [Fact]
    public async Task The_fix_turns_a_using_declaration_into_await_using()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class ReportExporter
            {
                async Task ExportAsync(string path, byte[] report)
                {
                    using var [|file = new FileStream(path, FileMode.Create)|];
                    await file.WriteAsync(report);
                }
            }
            """,
            Usings + """
            class ReportExporter
            {
                async Task ExportAsync(string path, byte[] report)
                {
                    await using var file = new FileStream(path, FileMode.Create);
                    await file.WriteAsync(report);
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_turns_a_using_statement_into_await_using()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class OrderRepository
            {
                public async Task DeleteAsync(Func<DbConnection> connect)
                {
                    using (var [|connection = connect()|])
                    {
                        await connection.OpenAsync();
                    }
                }
            }
            """,
            Usings + """
            class OrderRepository
            {
                public async Task DeleteAsync(Func<DbConnection> connect)
                {
                    await using (var connection = connect())
                    {
                        await connection.OpenAsync();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_turns_Dispose_into_await_DisposeAsync()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class Uploader
            {
                public async Task UploadAsync(FileStream upload)
                {
                    await upload.FlushAsync();
                    [|upload.Dispose()|]; // the client is done
                }
            }
            """,
            Usings + """
            class Uploader
            {
                public async Task UploadAsync(FileStream upload)
                {
                    await upload.FlushAsync();
                    await upload.DisposeAsync(); // the client is done
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_of_a_null_conditional_Dispose_awaits_DisposeAsync_only_when_the_object_is_there()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class Transfer
            {
                public async Task RunAsync(Func<DbConnection?> connect, CancellationToken ct)
                {
                    DbConnection? connection = connect();
                    try
                    {
                        await Task.Delay(1, ct);
                    }
                    finally
                    {
                        [|connection?.Dispose()|];
                    }
                }
            }
            """,
            Usings + """
            class Transfer
            {
                public async Task RunAsync(Func<DbConnection?> connect, CancellationToken ct)
                {
                    DbConnection? connection = connect();
                    try
                    {
                        await Task.Delay(1, ct);
                    }
                    finally
                    {
                        await (connection?.DisposeAsync() ?? default);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_connection_without_a_transaction_in_a_function_written_to_run_either_way_is_not_reported()
    {
        // Npgsql's DbColumnSchemaGenerator: the function runs with synchronous or asynchronous I/O as its caller asks,
        // so the code common to both paths cannot await; the reader is disposed on each path, and a connection that
        // began no transaction only goes back to its pool when closed, the same work either way.
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            using System.Collections.Generic;

            sealed class ColumnSchema(Func<DbConnection> clone)
            {
                internal async Task<List<string>> NamesAsync(string query, bool async, CancellationToken ct)
                {
                    var names = new List<string>();
                    using var connection = clone();
                    if (async)
                    {
                        await connection.OpenAsync(ct).ConfigureAwait(false);
                    }
                    else
                    {
                        connection.Open();
                    }

                    using var command = connection.CreateCommand();
                    command.CommandText = query;
                    var reader = async ? await command.ExecuteReaderAsync(ct).ConfigureAwait(false) : command.ExecuteReader();
                    try
                    {
                        while (async ? await reader.ReadAsync(ct).ConfigureAwait(false) : reader.Read())
                        {
                            names.Add(reader.GetString(0));
                        }
                    }
                    finally
                    {
                        if (async)
                        {
                            await reader.DisposeAsync().ConfigureAwait(false);
                        }
                        else
                        {
                            reader.Dispose();
                        }
                    }

                    return names;
                }
            }
            """);
    }

    [Fact]
    public async Task Objects_whose_asynchronous_disposal_would_wait_for_nothing_here_are_not_reported()
    {
        // From MySqlConnector: a reader drained to its last result, compression over memory, an authenticated stream
        // over a stream of its own that does no asynchronous disposal, a stream only read from.
        await VerifyCS.NoDiagnosticsAsync("""
            using System;
            using System.Data.Common;
            using System.IO;
            using System.IO.Compression;
            using System.Net.Security;
            using System.Threading;
            using System.Threading.Tasks;

            sealed class Framing : Stream
            {
                public override bool CanRead => true;
                public override bool CanSeek => false;
                public override bool CanWrite => true;
                public override long Length => 0;
                public override long Position { get; set; }
                public override void Flush() { }
                public override int Read(byte[] buffer, int offset, int count) => 0;
                public override long Seek(long offset, SeekOrigin origin) => 0;
                public override void SetLength(long value) { }
                public override void Write(byte[] buffer, int offset, int count) { }
            }

            sealed class Session
            {
                public async Task<int> ExecuteAsync(DbCommand command, CancellationToken ct)
                {
                    using var reader = await command.ExecuteReaderAsync(ct);
                    do
                    {
                        while (await reader.ReadAsync(ct))
                        {
                        }
                    }
                    while (await reader.NextResultAsync(ct));
                    return reader.RecordsAffected;
                }

                public async Task<byte[]> CompressAsync(Stream source, CancellationToken ct)
                {
                    using var memory = new MemoryStream();
                    using (var zlib = new ZLibStream(memory, CompressionLevel.Optimal, leaveOpen: true))
                    {
                        await source.CopyToAsync(zlib, ct);
                    }

                    return memory.ToArray();
                }

                public async Task AuthenticateAsync(CancellationToken ct)
                {
                    using var inner = new Framing();
                    using var negotiate = new NegotiateStream(inner);
                    await negotiate.AuthenticateAsClientAsync();
                }

                public async Task<long> SendFileAsync(string path, Func<byte[], int, Task> send, CancellationToken ct)
                {
                    var stream = File.OpenRead(path);
                    try
                    {
                        var buffer = new byte[8192];
                        int read;
                        while ((read = await stream.ReadAsync(buffer, ct)) > 0)
                        {
                            await send(buffer, read);
                        }

                        return stream.Length;
                    }
                    finally
                    {
                        stream.Dispose();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_reader_left_with_rows_or_results_unread_is_still_reported()
    {
        // MySqlConnector's CachedProcedure (returns after the first row) and MySqlBulkCopy (a schema-only reader).
        await VerifyCS.DiagnosticsAsync("""
            using System.Data;
            using System.Data.Common;
            using System.Threading;
            using System.Threading.Tasks;

            sealed class Procedures
            {
                public async Task<string?> FirstAsync(DbCommand command, CancellationToken ct)
                {
                    using var [|reader = await command.ExecuteReaderAsync(ct)|];
                    if (!await reader.ReadAsync(ct))
                    {
                        return null;
                    }

                    return reader.GetString(0);
                }

                public async Task<int> ColumnsAsync(DbCommand command, CancellationToken ct)
                {
                    using var [|reader = await command.ExecuteReaderAsync(CommandBehavior.SchemaOnly, ct)|];
                    return reader.GetColumnSchema().Count;
                }
            }
            """);
    }

    [Fact]
    public async Task The_synchronous_branch_of_a_disposal_written_to_run_either_way_is_not_reported()
    {
        // Npgsql's converters and COPY operations: one async method serves both APIs, chosen by a bool.
        await VerifyCS.NoDiagnosticsAsync("""
            using System.Data.Common;
            using System.Threading.Tasks;

            sealed class Copy
            {
                public async ValueTask EndAsync(DbDataReader reader, bool async, System.IO.Stream network)
                {
                    var tls = new System.Net.Security.SslStream(network, leaveInnerStreamOpen: true);
                    try
                    {
                        await tls.AuthenticateAsClientAsync("db.example");
                    }
                    finally
                    {
                        tls.Dispose(); // its asynchronous disposal would only dispose the socket's stream, synchronously
                    }

                    if (async)
                        await reader.DisposeAsync().ConfigureAwait(false);
                    else
                        reader.Dispose();
                }
            }
            """);
    }

    [Fact]
    public async Task A_reader_whose_loop_yields_to_a_consumer_that_may_stop_is_reported()
    {
        await VerifyCS.DiagnosticsAsync("""
            using System.Collections.Generic;
            using System.Data.Common;

            sealed class Rows
            {
                public async IAsyncEnumerable<int> ReadAsync(DbCommand command)
                {
                    using var [|reader = await command.ExecuteReaderAsync()|];
                    while (await reader.ReadAsync())
                    {
                        yield return reader.GetInt32(0);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_DisposeAsync_that_is_not_async_and_disposes_a_connection_synchronously_is_reported_without_a_fix()
    {
        await VerifyFix.NoFixAsync("""
            using System;
            using System.Data.Common;
            using System.Threading.Tasks;

            sealed class Repository(DbConnection connection) : IAsyncDisposable
            {
                private readonly DbConnection _connection = connection;

                public ValueTask DisposeAsync()
                {
                    [|_connection.Dispose()|];
                    return default;
                }
            }
            """);
    }

    [Fact]
    public async Task A_DisposeAsync_that_is_not_async_reports_what_to_do()
    {
        await VerifyCS.DiagnosticsAsync(
            """
            using System;
            using System.IO;
            using System.Threading.Tasks;

            sealed class Export(string path) : IAsyncDisposable
            {
                private readonly FileStream _file = new(path, FileMode.Create);

                public ValueTask DisposeAsync()
                {
                    {|#0:_file.Dispose()|};
                    return ValueTask.CompletedTask;
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("_file", "in a DisposeAsync that is not async", "make it async and use 'await _file.DisposeAsync()'"));
    }

    [Fact]
    public async Task A_stream_known_only_as_Stream_is_judged_by_what_it_was_made_from()
    {
        // MQTTnet's MqttTcpChannel and Npgsql's connector: a field typed Stream holding a socket's stream, disposed in
        // the catch of a failed connect. A local typed Stream made by File.OpenWrite is a FileStream, and reported.
        await VerifyCS.DiagnosticsAsync("""
            using System.IO;
            using System.Net.Sockets;
            using System.Threading.Tasks;

            sealed class Channel(Socket socket)
            {
                private Stream? _stream;

                public async Task ConnectAsync(string host, int port)
                {
                    try
                    {
                        await socket.ConnectAsync(host, port);
                        _stream = new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        _stream?.Dispose();
                        throw;
                    }
                }

                public async Task SaveAsync(string path, byte[] data)
                {
                    Stream file = File.OpenWrite(path);
                    await file.WriteAsync(data);
                    [|file.Dispose()|];
                }
            }
            """);
    }
}
