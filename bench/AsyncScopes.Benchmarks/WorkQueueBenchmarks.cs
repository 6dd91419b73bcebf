using System.Threading.Channels;
using AsyncScopes;
using BenchmarkDotNet.Attributes;

namespace AsyncScopes.Benchmarks;

/// <summary>100,000 items through 2 workers, against a channel with 2 consumer tasks.</summary>
[MemoryDiagnoser]
public class WorkQueueBenchmarks
{
    private const int Items = 100_000;
    private const int Workers = 2;
    private long _handled;

    [Benchmark(Baseline = true, OperationsPerInvoke = Items)]
    public async Task ChannelWithConsumers()
    {
        var channel = Channel.CreateUnbounded<int>();
        var consumers = new Task[Workers];
        for (int i = 0; i < Workers; i++)
        {
            consumers[i] = Task.Run(async () =>
            {
                await foreach (var item in channel.Reader.ReadAllAsync())
                {
                    try
                    {
                        await Handle(item, CancellationToken.None);
                    }
                    catch (Exception)
                    {
                        // a hand-written queue must survive its handler too
                    }
                }
            });
        }

        for (int i = 0; i < Items; i++)
        {
            channel.Writer.TryWrite(i);
        }

        channel.Writer.Complete();
        await Task.WhenAll(consumers);
    }

    [Benchmark(OperationsPerInvoke = Items)]
    public async Task<long> WorkQueue()
    {
        var queue = new WorkQueue<int>(Handle, new WorkQueueOptions<int> { Workers = Workers });
        for (int i = 0; i < Items; i++)
        {
            queue.TryEnqueue(i);
        }

        var result = await queue.CompleteAsync();
        return result.Completed;
    }

    private Task Handle(int item, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _handled);
        return Task.CompletedTask;
    }
}
