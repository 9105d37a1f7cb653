#!/bin/sh
# Regenerates clip.mp4, the builtin:demo clip embedded by gateway/source.
# Run from this directory with ffmpeg (built with libx264, libopus, libfreetype):
#   sh make-demo-clip.sh
# Made with ffmpeg 5.1 (Debian 12). The output is committed; the build does not run this.
#
# - 10 s, 640x360, 25 fps testsrc2 with a burnt-in running clock (pts as hh:mm:ss.ms)
# - H264 constrained baseline (no B-frames), a keyframe exactly every 25 frames (1 s)
# - Opus 48 kHz stereo, a 1 kHz sine with a beep every second
# - fragmented MP4 (a fragment per keyframe, moof-relative offsets) so that
#   mediacommon's fmp4 reader parses it in one pass
set -eu
ffmpeg -hide_banner -y \
  -f lavfi -i "testsrc2=size=640x360:rate=25,drawtext=font=monospace:fontsize=40:fontcolor=white:box=1:boxcolor=black@0.6:x=20:y=20:text='%{pts\:hms}'" \
  -f lavfi -i "sine=frequency=1000:beep_factor=4:sample_rate=48000" \
  -t 10 \
  -c:v libx264 -profile:v baseline -level 3.0 -pix_fmt yuv420p -preset slow -bf 0 \
  -g 25 -keyint_min 25 -sc_threshold 0 -crf 30 -maxrate 600k -bufsize 600k -x264-params "aud=0" \
  -c:a libopus -b:a 48k -ac 2 -ar 48000 -frame_duration 20 \
  -movflags +frag_keyframe+empty_moov+default_base_moof \
  -map_metadata -1 -fflags +bitexact \
  clip.mp4
