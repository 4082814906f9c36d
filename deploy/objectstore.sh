#!/bin/sh
# The S3-compatible artifact store of the scale-out stack: rclone's `serve s3` over /srv/s3 (the volume),
# a bucket being a folder there; the first start makes S3_BUCKET's. Clients sign with the key pair
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. No config file; rclone's cache stays out of the volume.
set -eu
: "${S3_BUCKET:?}" "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}"
mkdir -p "/srv/s3/$S3_BUCKET"
exec rclone serve s3 /srv/s3 --addr :9000 --config "" --cache-dir /tmp/rclone --log-level NOTICE \
    --auth-key "$AWS_ACCESS_KEY_ID,$AWS_SECRET_ACCESS_KEY"
