internal import NIOCore
internal import NIOHTTPTypes

/// Closes a connection that does not deliver a complete request (head and body) within
/// `timeout` of its opening or of the end of its previous request. The idle timeout resets on
/// every byte, so a client sending a header byte every few seconds (slowloris) would otherwise
/// hold its connection, and its slot under `--max-connections`, for ever. The deadline runs
/// while the server answers too (the next request's clock starts at the previous request's end),
/// so a keep-alive connection left unused is closed after `timeout` as well.
final class RequestReadDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) {
            // The request is complete; the next one gets a fresh deadline.
            arm(context)
        }
        context.fireChannelRead(data)
    }

    private func arm(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            channel.close(promise: nil)
        }
    }
}
