using Chat;

// dotnet run --project samples/Chat [-- --urls http://127.0.0.1:5080 --Database:Path=chat.db]
WebApplication app = ChatApp.Build(args);
await app.RunAsync();
