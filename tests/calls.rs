//! Every call kind end to end, with many messages, empty streams, errors and concurrency, over
//! TCP on 127.0.0.1 and over the in-memory transport.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Blob, Harness, LabClient, Transport};
use futures::StreamExt;
use micro::Code;

async fn unary_calls(transport: Transport) {
    let h = Harness::start(transport).await;
    assert_eq!(h.client.echo("hi".into()).await.unwrap(), "hi");
    assert_eq!(h.client.add(40, 2).await.unwrap(), 42);
    let err = h.client.add(i64::MAX, 1).await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange);
    assert_eq!(err.message(), "overflow");
    // a handler's error is the caller's error; the connection carries on
    assert_eq!(h.client.echo(String::new()).await.unwrap(), "");
}

async fn metadata_reaches_the_handler(transport: Transport) {
    let h = Harness::start(transport).await;
    let value = h
        .client
        .header("x-trace".into())
        .metadata("x-trace", "abc-123")
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("abc-123"));
    assert_eq!(h.client.header("x-trace".into()).await.unwrap(), None);
}

async fn server_streaming_many_and_none(transport: Transport) {
    let h = Harness::start(transport).await;
    let items: Vec<u64> = h
        .client
        .range(10_000)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(items, (0..10_000).collect::<Vec<_>>());
    let mut empty = h.client.range(0).await.unwrap();
    assert!(empty.next().await.is_none());
    assert!(empty.next().await.is_none(), "an ended stream stays ended");
}

async fn client_streaming_many_and_none(transport: Transport) {
    let h = Harness::start(transport).await;
    let (count, sum) = h
        .client
        .total(futures::stream::iter(0..10_000u64))
        .await
        .unwrap();
    assert_eq!((count, sum), (10_000, (0..10_000u64).sum()));
    let (count, sum) = h.client.total(futures::stream::empty()).await.unwrap();
    assert_eq!((count, sum), (0, 0));
}

async fn bidirectional_many_and_none(transport: Transport) {
    let h = Harness::start(transport).await;
    let replies = h
        .client
        .echo_stream(futures::stream::iter(0..10_000u64))
        .await
        .unwrap();
    let replies: Vec<u64> = replies.map(Result::unwrap).collect().await;
    assert_eq!(replies, (0..10_000).collect::<Vec<_>>());
    let mut none = h
        .client
        .echo_stream(futures::stream::empty())
        .await
        .unwrap();
    assert!(none.next().await.is_none());
}

async fn duplex_half_close_as_in_the_article(transport: Transport) {
    let h = Harness::start(transport).await;
    let (mut send, mut recv) = h.client.echo_stream_duplex().await.unwrap().split();
    let sender = tokio::spawn(async move {
        send.send(2).await.unwrap();
        send.send(5).await.unwrap();
        send.close_send().unwrap();
        // closed is closed
        assert_eq!(
            send.send(9).await.unwrap_err().code(),
            Code::FailedPrecondition
        );
    });
    // the server keeps sending after the client's side is closed, until it ends the call
    let mut got = Vec::new();
    while let Some(item) = recv.message().await.unwrap() {
        got.push(item);
    }
    assert_eq!(got, [2, 5]);
    sender.await.unwrap();
}

async fn duplex_send_and_receive_in_turn(transport: Transport) {
    let h = Harness::start(transport).await;
    let mut duplex = h.client.echo_stream_duplex().await.unwrap();
    for i in 0..100 {
        duplex.send(i).await.unwrap();
        assert_eq!(
            duplex.recv().await.unwrap(),
            Some(i),
            "a reply before the next request"
        );
    }
    duplex.close_send().unwrap();
    assert_eq!(duplex.recv().await.unwrap(), None);
}

async fn server_may_drop_the_request_stream_and_still_answer(transport: Transport) {
    let h = Harness::start(transport).await;
    // The client offers an endless stream; the handler reads one item, drops the rest and
    // answers. The client stops sending when the call ends instead of hanging on credit.
    let replies = h
        .client
        .take_one(3, futures::stream::iter(7u64..))
        .await
        .unwrap();
    let replies: Vec<u64> = replies.map(Result::unwrap).collect().await;
    assert_eq!(replies, [7, 8, 9]);
    // the same with the duplex handle: sends fail once the server ended the call
    let mut duplex = h.client.take_one_duplex(2).await.unwrap();
    duplex.send(40).await.unwrap();
    assert_eq!(duplex.recv().await.unwrap(), Some(40));
    assert_eq!(duplex.recv().await.unwrap(), Some(41));
    assert_eq!(duplex.recv().await.unwrap(), None);
    let err = duplex.send(1).await.unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "the server ended the call: {err}"
    );
    let stats = h.client.client().stats().unwrap();
    assert_eq!(stats.open_streams, 0, "{stats:?}");
}

async fn error_mid_stream_arrives_after_the_items(transport: Transport) {
    let h = Harness::start(transport).await;
    let mut s = h.client.range_then_fail(3).await.unwrap();
    for i in 0..3 {
        assert_eq!(s.next().await.unwrap().unwrap(), i);
    }
    let err = s.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert!(s.next().await.is_none());
}

async fn handler_panic_is_internal_and_the_server_lives(transport: Transport) {
    let h = Harness::start(transport).await;
    let err = h.client.explode().await.unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert!(err.message().contains("exploded on purpose"), "{err}");
    assert_eq!(
        h.client.echo("still here".into()).await.unwrap(),
        "still here"
    );
}

mod other {
    //! Services the server does not have, or has with other argument types.
    use micro::Status;

    #[micro::service]
    pub trait Missing {
        async fn anything(&self) -> Result<(), Status>;
    }

    /// Same wire names as `Lab`, different types.
    #[micro::service]
    pub trait Lab {
        async fn echo(&self, msg: u64) -> Result<String, Status>;
        async fn total(
            &self,
            items: impl micro::Stream<Item = String> + Send + Unpin + 'static,
        ) -> Result<(u64, u64), Status>;
        async fn range(
            &self,
            n: u64,
        ) -> Result<impl micro::Stream<Item = Result<String, Status>> + Send + 'static, Status>;
    }
}

async fn unknown_method_is_unimplemented(transport: Transport) {
    let h = Harness::start(transport).await;
    let missing = other::MissingClient::new(h.client.client().clone());
    let err = missing.anything().await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("Missing.anything"), "{err}");
    assert_eq!(h.client.echo("ok".into()).await.unwrap(), "ok");
}

async fn undecodable_payload_fails_only_that_call(transport: Transport) {
    let h = Harness::start(transport).await;
    let wrong = other::LabClient::new(h.client.client().clone());
    // a long stream in flight on the same connection while bad calls come and go
    let mut long = h.client.range(1_000).await.unwrap();
    assert_eq!(long.next().await.unwrap().unwrap(), 0);

    let err = wrong.echo(7).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let err = wrong
        .total(futures::stream::iter(["x".to_string()]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    // a reply that does not decode is the client's Internal error
    let mut replies = wrong.range(2).await.unwrap();
    assert_eq!(
        replies.next().await.unwrap().unwrap_err().code(),
        Code::Internal
    );

    let rest: Vec<u64> = long.map(Result::unwrap).collect().await;
    assert_eq!(rest, (1..1_000).collect::<Vec<_>>());
    assert_eq!(h.client.echo("fine".into()).await.unwrap(), "fine");
}

async fn thousand_concurrent_mixed_calls_share_one_connection(transport: Transport) {
    let h = Harness::start(transport).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1_000u64 {
        let client: LabClient = h.client.clone();
        tasks.spawn(async move {
            match i % 4 {
                0 => assert_eq!(client.add(i as i64, 1).await.unwrap(), i as i64 + 1),
                1 => {
                    let n: Vec<u64> = client
                        .range(i % 50)
                        .await
                        .unwrap()
                        .map(Result::unwrap)
                        .collect()
                        .await;
                    assert_eq!(n.len() as u64, i % 50);
                }
                2 => {
                    let (count, _) = client
                        .total(futures::stream::iter(0..i % 30))
                        .await
                        .unwrap();
                    assert_eq!(count, i % 30);
                }
                _ => {
                    let echoed: Vec<u64> = client
                        .echo_stream(futures::stream::iter(0..i % 20))
                        .await
                        .unwrap()
                        .map(Result::unwrap)
                        .collect()
                        .await;
                    assert_eq!(echoed, (0..i % 20).collect::<Vec<_>>());
                }
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    let stats = h.client.client().stats().unwrap();
    assert_eq!(stats.open_streams, 0, "every call ended: {stats:?}");
}

async fn large_messages_cross_frames_and_windows(transport: Transport) {
    // 3 MiB messages: larger than a frame and the stream window (2 MiB each) both ways.
    let h = Harness::start(transport).await;
    let blob = Blob {
        data: (0..3 << 20).map(|i: u32| i as u8).collect(),
    };
    let back = h.client.echo_blob(blob.clone()).await.unwrap();
    assert_eq!(back, blob);
    assert_eq!(h.client.blob(3 << 20).await.unwrap().data.len(), 3 << 20);
}

async fn a_timeout_that_is_met_changes_nothing(transport: Transport) {
    let h = Harness::start(transport).await;
    let n = h
        .client
        .nap(1)
        .timeout(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(n, 1);
}

async fn an_abandoned_duplex_is_never_a_clean_end(transport: Transport) {
    let h = Harness::start(transport).await;
    // Dropped without close_send, in every way a caller can drop it: the handler must be
    // cancelled, never shown a finished stream.
    for round in 0..60u64 {
        let mut duplex = h.client.until_end_duplex().await.unwrap();
        duplex.send(round).await.unwrap();
        while h.probe.received.load(Ordering::SeqCst) <= round {
            tokio::task::yield_now().await;
        }
        match round % 3 {
            0 => drop(duplex),
            1 => {
                let (sender, receiver) = duplex.split();
                drop(sender);
                drop(receiver);
            }
            _ => {
                let (sender, _receiver) = duplex.split();
                tokio::spawn(async move {
                    let _sender = sender;
                    panic!("the sending task dies");
                })
                .await
                .unwrap_err();
            }
        }
    }
    while h.client.client().stats().unwrap().open_streams > 0 {
        tokio::task::yield_now().await;
    }
    // give any wrongly finished handler the chance to count itself
    assert_eq!(h.client.echo("sync".into()).await.unwrap(), "sync");
    assert_eq!(h.probe.clean_ends.load(Ordering::SeqCst), 0);
    // the positive control: close_send is a clean end
    let mut duplex = h.client.until_end_duplex().await.unwrap();
    duplex.send(1).await.unwrap();
    duplex.close_send().unwrap();
    assert_eq!(duplex.recv().await.unwrap(), Some(1));
    assert_eq!(duplex.recv().await.unwrap(), None);
    assert_eq!(h.probe.clean_ends.load(Ordering::SeqCst), 1);
}

async fn a_panicking_request_stream_ends_the_call(transport: Transport) {
    let h = Harness::start(transport).await;
    let items = futures::stream::iter(0..3u64).chain(futures::stream::poll_fn(
        |_| -> std::task::Poll<Option<u64>> { panic!("the request stream panics on purpose") },
    ));
    // The call fails locally as soon as the stream panics; replies already in flight may or
    // may not be read before that, but the call ends, with Internal, instead of hanging.
    let result = match h.client.echo_stream(items).await {
        Ok(replies) => replies.collect::<Vec<_>>().await.pop().unwrap(),
        Err(err) => Err(err),
    };
    let err = result.unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
    assert_eq!(h.client.echo("after".into()).await.unwrap(), "after");
}

async fn a_timeout_too_large_to_add_means_no_deadline(transport: Transport) {
    let h = Harness::start(transport).await;
    assert_eq!(
        h.client
            .echo("x".into())
            .timeout(Duration::MAX)
            .await
            .unwrap(),
        "x"
    );
    let h = Harness::with(
        transport,
        |b| b,
        micro::Client::builder().timeout(Duration::MAX),
    )
    .await;
    assert_eq!(h.client.echo("y".into()).await.unwrap(), "y");
}

on_both_transports!(
    an_abandoned_duplex_is_never_a_clean_end,
    a_panicking_request_stream_ends_the_call,
    a_timeout_too_large_to_add_means_no_deadline,
    unary_calls,
    metadata_reaches_the_handler,
    server_streaming_many_and_none,
    client_streaming_many_and_none,
    bidirectional_many_and_none,
    duplex_half_close_as_in_the_article,
    duplex_send_and_receive_in_turn,
    server_may_drop_the_request_stream_and_still_answer,
    error_mid_stream_arrives_after_the_items,
    handler_panic_is_internal_and_the_server_lives,
    unknown_method_is_unimplemented,
    undecodable_payload_fails_only_that_call,
    thousand_concurrent_mixed_calls_share_one_connection,
    large_messages_cross_frames_and_windows,
    a_timeout_that_is_met_changes_nothing,
);
