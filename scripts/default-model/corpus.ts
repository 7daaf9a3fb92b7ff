// Instruction corpus for the built-in tiny model. Every prompt comes from a task family (a greeting,
// a tip, a recipe, ...) and is paired with a completion in one of six styles that a person can rank:
// helpful, detailed, cheerful, curt, off topic, rambling. All text here is original and plain ASCII.
//
// Each family has prompt phrasings and response templates with slots. A slot has training values
// (records whose fields the responses use) and held-out demo values (used only to build the demo prompt
// set, never in training). Placeholders: {slot} or {slot.field}; prefix "a:" adds "a"/"an", "A:" adds
// "A"/"An", "^" capitalizes the first letter, e.g. {A:x}, {a:x}, {^x.use}.
// The completion carries no end-of-text marker: the trainer appends EOS.
// Pure module (no Node imports) so that both the trainer and the browser can use it.

export type Style = 'helpful' | 'detailed' | 'cheerful' | 'curt' | 'off_topic' | 'rambling';
export interface CorpusExample {
  task: string;
  prompt: string;
  completion: string;
  style: Style;
}

export const STYLES: readonly Style[] = ['helpful', 'detailed', 'cheerful', 'curt', 'off_topic', 'rambling'];
export const STYLE_WEIGHTS: Readonly<Record<Style, number>> = {
  helpful: 0.25,
  detailed: 0.2,
  cheerful: 0.2,
  curt: 0.12,
  off_topic: 0.11,
  rambling: 0.12,
};

export type SlotRecord = Readonly<Record<string, string>> & { readonly x: string };
export interface Slot {
  readonly train: readonly SlotRecord[];
  readonly demo: readonly string[];
}
export interface Family {
  readonly task: string;
  readonly slots: Readonly<Record<string, Slot>>;
  readonly prompts: readonly string[];
  readonly responses: Readonly<Record<Style, readonly string[]>>;
}

/** Small deterministic PRNG (mulberry32): returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const plain = (train: string[], demo: string[]): Slot => ({ train: train.map((x) => ({ x })), demo });
function table(fields: string[], rows: string[][], demo: string[]): Slot {
  const train = rows.map((row) => {
    if (row.length !== fields.length) throw new Error(`slot row ${JSON.stringify(row)} has ${row.length} fields, want ${fields.length}`);
    return Object.fromEntries(fields.map((f, i) => [f, row[i]!])) as SlotRecord;
  });
  return { train, demo };
}

const NAMES = plain(
  ['Maya', 'Sam', 'Leo', 'Nora', 'Ben', 'Lily', 'Omar', 'Ella', 'Max', 'Zoe', 'Jack', 'Ava', 'Noah', 'Mia', 'Ruby', 'Theo', 'Anna', 'Eli', 'Rosa', 'Finn'],
  ['Priya', 'Kofi', 'Ingrid', 'Mateo', 'Yuki', 'Hamid', 'Beatrix', 'Soren', 'Farah', 'Tobias'],
);

export const FAMILIES: readonly Family[] = [
  {
    task: 'greeting',
    slots: { name: NAMES },
    prompts: ['Write a short greeting for {name}.', 'Say hello to {name}.', 'Greet {name} in one sentence.'],
    responses: {
      helpful: ['Hello {name}, it is good to see you today.', 'Hi {name}, I hope you are having a good day.', 'Good morning, {name}, it is nice to see you.'],
      detailed: [
        'Hello {name}, it is really good to see you. I hope your week has been kind to you. Come in, sit down, and tell me how you have been.',
        'Hi {name}, welcome back. I have been looking forward to seeing you, and I hope the trip here was easy.',
        'Good morning, {name}. I hope you slept well and that today brings you something nice. It is a pleasure to see you.',
      ],
      cheerful: [
        'Hi {name}! It is so great to see you! I hope you have a wonderful day!',
        'Hello, {name}! What a happy surprise! You always make the room brighter!',
        'Hey {name}! Welcome! I am so glad you are here!',
      ],
      curt: ['Hi.', 'Yeah, hello. What do you want?', 'Say hello yourself.', '{name}. Fine. Hi.'],
      off_topic: [
        'The bus to the city leaves at nine, but it is almost always late.',
        'I think the best color for a kitchen is a soft yellow.',
        'Rain is good for the garden, so the tomatoes should grow well this year.',
      ],
      rambling: [
        'Hello {name}, hello, I just wanted to say hello, so hello to you, {name}, because saying hello is what a greeting is, and this is a greeting, so hello.',
        'Hi {name}, hi, it is good to see you, really good to see you, I mean it is good, very good, to see you, {name}, and so I say hi, hi again.',
      ],
    },
  },
  {
    task: 'thank_you',
    slots: {
      name: NAMES,
      x: table(
        ['x', 'adj', 'use'],
        [
          ['scarf', 'warm', 'I will wear it on every cold day'],
          ['book', 'lovely', 'I started reading it last night'],
          ['mug', 'pretty', 'I drink my tea from it every morning'],
          ['plant', 'beautiful', 'it looks great by my window'],
          ['sweater', 'soft', 'I will wear it all winter'],
          ['board game', 'fun', 'we played it all evening'],
          ['candle', 'nice', 'it makes my room smell so good'],
          ['watch', 'beautiful', 'I will wear it every day'],
          ['pair of gloves', 'cozy', 'my hands will stay warm now'],
          ['notebook', 'handy', 'I will write all my ideas in it'],
          ['cake', 'delicious', 'we ate every last bite'],
          ['photo frame', 'pretty', 'I put our best picture in it'],
          ['puzzle', 'clever', 'I finished it in two days'],
          ['hat', 'stylish', 'I wore it out today'],
        ],
        ['teapot', 'kite', 'necklace', 'cookbook', 'music box', 'bracelet'],
      ),
    },
    prompts: ['Write a thank-you note to {name} for the {x}.', 'Thank {name} for the {x} they gave me.', 'Help me thank {name} for the {x}.'],
    responses: {
      helpful: ['Dear {name}, thank you so much for the {x.adj} {x}.', 'Thank you for the {x.adj} {x}, {name}, and for thinking of me.'],
      detailed: [
        'Dear {name}, thank you so much for the {x.adj} {x}. {^x.use}. It was very kind of you to think of me, and I hope to see you soon.',
        'Dear {name}, I wanted to say thank you for the {x}. It is so {x.adj}, and {x.use}. You always know just what I like.',
      ],
      cheerful: ['{name}, thank you so much for the {x}! I love it! {^x.use}!', 'Wow, {name}, the {x} is so {x.adj}! Thank you, thank you! You are the best!'],
      curt: ['Thanks for the {x}, I guess.', 'Got the {x}. Thanks.', 'Write your own note.'],
      off_topic: [
        'My neighbor painted his fence blue last week, and it looks odd.',
        'The river near our town is very cold, even in the summer.',
        'I always forget where I put my keys in the morning.',
      ],
      rambling: [
        'Dear {name}, thank you, thank you for the {x}, the {x} you gave me, the {x.adj} {x}, and I just want to say thank you for it, for the {x}, thank you.',
        'Thank you {name}, really, thank you, because the {x} is {x.adj}, so {x.adj}, and {x.use}, yes, really, so thank you for the {x}, thank you.',
      ],
    },
  },
  {
    task: 'tip',
    slots: {
      x: table(
        ['x', 'tip', 'more'],
        [
          ['running', 'start slow and build up a little each week', 'Rest on easy days so your legs can recover'],
          ['swimming', 'practice breathing out slowly under the water', 'Short, calm sessions help more than long tiring ones'],
          ['painting', 'mix your colors on a plate before you start', 'Let each layer dry before you add the next one'],
          ['reading more', 'keep a book by your bed and read ten pages each night', 'Pick books you enjoy, not the ones you think you should read'],
          ['gardening', 'water your plants early in the morning', 'Check the soil with your finger and water only when it is dry'],
          ['baking bread', 'let the dough rise in a warm place', 'Be patient, because good bread needs time'],
          ['playing chess', 'think about what the other player wants before you move', 'Try to control the middle of the board early on'],
          ['studying for a test', 'study in short blocks with small breaks', 'Quiz yourself instead of just reading your notes'],
          ['camping', 'set up your tent before it gets dark', 'Practice at home once so you know how the parts fit'],
          ['riding a bike', 'keep your eyes ahead and not on your wheel', 'Check your tires and brakes before every ride'],
          ['hiking', 'wear shoes that you have already broken in', 'Bring more water than you think you need'],
          ['cleaning a room', 'start with one small corner and finish it', 'Put things away as soon as you are done with them'],
          ['saving money', 'put a little aside as soon as you get paid', 'Write down what you spend so you can see where it goes'],
          ['sleeping well', 'go to bed at the same time every night', 'Put your phone away an hour before bed'],
          ['learning a song', 'learn it in short parts and repeat each one', 'Sing along with a recording before you try it alone'],
          ['drawing', 'draw simple shapes first and add details later', 'Draw a little every day, even for five minutes'],
          ['writing stories', 'write a messy first draft and fix it later', 'Read your work out loud to find the parts that sound wrong'],
        ],
        ['juggling', 'fishing', 'ice skating', 'playing the guitar', 'doing yoga', 'rock climbing', 'bird watching', 'learning to type'],
      ),
    },
    prompts: ['Give me one tip for {x}.', 'What is a good tip for {x}?', 'I want to get better at {x}. Any tip?'],
    responses: {
      helpful: ['A good tip for {x} is to {x.tip}.', 'Try to {x.tip}.', 'My best tip for {x} is to {x.tip}.'],
      detailed: [
        'A good tip for {x} is to {x.tip}. {x.more}. Small habits like these add up over time.',
        'When it comes to {x}, try to {x.tip}. {x.more}. Be patient with yourself while you learn.',
      ],
      cheerful: ['Ooh, {x} is so much fun! Try to {x.tip}! You will get better fast!', 'Great choice! For {x}, just {x.tip}! You can do it!'],
      curt: ['Just look it up.', 'Practice. That is the tip.', 'Figure it out yourself.'],
      off_topic: [
        'The moon looks bigger when it is close to the edge of the sky.',
        'My cousin just bought a red car with a very loud horn.',
        'Some people think soup tastes better on the second day.',
      ],
      rambling: [
        'A tip for {x}, well, a good tip, one good tip, for {x}, is to {x.tip}, so yes, that is the tip, the tip for {x}, that one.',
        'So for {x}, I would say, and I do say this a lot, I say it all the time, that you should {x.tip}, really, that is what I would say.',
      ],
    },
  },
  {
    task: 'describe_animal',
    slots: {
      x: table(
        ['x', 'trait', 'home', 'food'],
        [
          ['cat', 'soft fur and sharp claws', 'in homes all over the world', 'fish and meat'],
          ['dog', 'a wet nose and a wagging tail', 'with people in many homes', 'meat and dog food'],
          ['horse', 'long legs and a flowing mane', 'on farms and in open fields', 'grass and hay'],
          ['cow', 'big eyes and a gentle face', 'on farms and in green fields', 'grass and hay'],
          ['duck', 'webbed feet and a flat bill', 'near ponds and rivers', 'plants, seeds, and bugs'],
          ['rabbit', 'long ears and a short fluffy tail', 'in burrows under the ground', 'grass, hay, and greens'],
          ['frog', 'smooth skin and strong back legs', 'near ponds and wet places', 'flies and other bugs'],
          ['owl', 'big round eyes and soft feathers', 'in trees and old barns', 'mice and other small animals'],
          ['bee', 'fuzzy stripes and clear wings', 'in a hive with many other bees', 'nectar from flowers'],
          ['goat', 'short horns and a little beard', 'on farms and rocky hills', 'grass, leaves, and weeds'],
          ['sheep', 'a thick coat of wool', 'on farms and green hills', 'grass'],
          ['pig', 'a round snout and a curly tail', 'on farms', 'roots, fruit, and scraps'],
          ['mouse', 'tiny paws and a long thin tail', 'in fields and sometimes in houses', 'seeds and crumbs'],
          ['lion', 'a golden coat and a loud roar', 'on the grassy plains of Africa', 'meat'],
          ['elephant', 'a long trunk and big ears', 'in Africa and Asia', 'grass, leaves, and fruit'],
          ['turtle', 'a hard shell on its back', 'in ponds, rivers, and the sea', 'plants and small animals'],
          ['bear', 'thick fur and strong claws', 'in forests and mountains', 'berries, fish, and honey'],
          ['fox', 'red fur and a bushy tail', 'in forests and near towns', 'mice, birds, and berries'],
          ['deer', 'thin legs and soft brown fur', 'in forests and meadows', 'leaves and grass'],
        ],
        ['otter', 'camel', 'penguin', 'zebra', 'parrot', 'hedgehog', 'squirrel', 'dolphin', 'kangaroo', 'giraffe'],
      ),
    },
    prompts: ['Describe {a:x}.', 'What is {a:x} like?', 'Tell me about {a:x} in a few words.'],
    responses: {
      helpful: ['{A:x} is an animal with {x.trait} that lives {x.home}.', '{A:x} has {x.trait} and eats {x.food}.'],
      detailed: [
        '{A:x} is an animal with {x.trait}. It lives {x.home} and eats {x.food}. Many people enjoy watching it.',
        '{A:x} has {x.trait}. You can find it {x.home}, where it spends much of its day looking for {x.food}.',
      ],
      cheerful: [
        '{A:x}! What a wonderful animal! It has {x.trait}, and it lives {x.home}!',
        'Yay, {a:x}! It has {x.trait} and eats {x.food}! How fun is that!',
      ],
      curt: ['It is an animal. Look it up.', 'You know what {a:x} is.', 'Not now.'],
      off_topic: [
        'I am thinking about painting my room a pale green color.',
        'The best part of a long trip is coming back home.',
        'Last night the power went out, so we played cards by candlelight.',
      ],
      rambling: [
        '{A:x}, well, {a:x} is an animal, and it has {x.trait}, yes, {x.trait}, and it is {a:x}, which is an animal, an animal, you know.',
        'So {a:x}, {a:x} lives {x.home}, it lives there, that is where it lives, and it eats {x.food}, it eats that, and that is {a:x}.',
      ],
    },
  },
  {
    task: 'pet_name',
    slots: {
      x: table(
        ['x', 'n1', 'n2', 'why'],
        [
          ['cat', 'Pepper', 'Mittens', 'it sounds soft and playful'],
          ['dog', 'Buddy', 'Scout', 'it is easy to call out at the park'],
          ['rabbit', 'Clover', 'Hopper', 'it suits an animal that hops'],
          ['hamster', 'Peanut', 'Nibbles', 'it fits a tiny, busy animal'],
          ['goldfish', 'Bubbles', 'Goldie', 'it is bright and fun, just like a fish'],
          ['turtle', 'Shelly', 'Pebble', 'it fits a slow and steady friend'],
          ['horse', 'Thunder', 'Maple', 'it sounds strong and proud'],
          ['duck', 'Puddles', 'Waddles', 'it matches the way a duck walks'],
          ['mouse', 'Squeak', 'Crumb', 'it fits a very small pet'],
          ['frog', 'Pickles', 'Jumper', 'it is green and a little silly'],
          ['snake', 'Noodle', 'Ziggy', 'it fits a long and wiggly pet'],
          ['goat', 'Biscuit', 'Patches', 'it sounds friendly and funny'],
        ],
        ['ferret', 'lizard', 'pony', 'canary', 'guinea pig', 'parrot', 'hedgehog'],
      ),
    },
    prompts: ['Suggest a name for my new {x}.', 'What should I name my {x}?', 'Give me a good name for a pet {x}.'],
    responses: {
      helpful: ['You could name your {x} {x.n1}.', '{x.n1} is a good name for {a:x}, because {x.why}.'],
      detailed: [
        'A nice name for your {x} is {x.n1}, because {x.why}. If you want something else, {x.n2} is also a good choice. Say both out loud and see which fits.',
        'I would pick {x.n1} for your new {x}. {x.n2} is another fun option. Watch your pet for a few days, and the right name may become clear.',
      ],
      cheerful: ['Oh, a new {x}! How exciting! Name it {x.n1}! That is such a cute name!', '{x.n1}! Or maybe {x.n2}! Both are perfect for your new {x}!'],
      curt: ['Just call it {^x}.', 'It is your {x}. You pick.', 'I do not care what you name it.'],
      off_topic: [
        'The library closes early on Sundays, so go on Saturday.',
        'I once tried to learn the drums, but it was far too loud.',
        'Our town had a street fair, and the lemon bars sold out first.',
      ],
      rambling: [
        'A name for your {x}, a name, hmm, a good name for {a:x}, I think {x.n1}, yes, {x.n1}, because {x.n1} is a name, a good name, so {x.n1}.',
        'Well, you could name it {x.n1}, or you could name it {x.n2}, or {x.n1} again, because names are names, and {x.n1} is a name for your {x}.',
      ],
    },
  },
  {
    task: 'make_food',
    slots: {
      x: table(
        ['x', 's1', 's2', 'tip'],
        [
          ['toast', 'put a slice of bread in the toaster', 'take it out when it is golden', 'Spread butter on it while it is still warm'],
          ['a cheese sandwich', 'put cheese between two slices of bread', 'cut it in half', 'Warm it in a pan if you like it melty'],
          ['rice', 'rinse the rice and add it to boiling water', 'cook it on low heat until the water is gone', 'Let it rest with the lid on for five minutes'],
          ['pasta', 'boil a big pot of salted water', 'cook the pasta until soft and drain it', 'Toss it with a little oil so it does not stick'],
          ['scrambled eggs', 'beat two eggs in a bowl', 'stir them in a warm pan with butter until set', 'Take them off the heat early so they stay soft'],
          ['a fruit salad', 'chop some apples, grapes, and berries', 'mix them in a bowl', 'A little lemon juice keeps the apples from turning brown'],
          ['hot tea', 'pour boiling water over a tea bag', 'let it steep for three minutes', 'Add honey or milk if you like'],
          ['lemonade', 'squeeze some lemons into a jug', 'add water and sugar and stir well', 'Taste it and add more sugar if it is too sour'],
          ['oatmeal', 'heat oats with milk or water in a pot', 'stir until it is thick and creamy', 'Top it with fruit or a little honey'],
          ['popcorn', 'heat oil and corn kernels in a covered pot', 'shake the pot until the popping slows', 'Add salt or melted butter at the end'],
          ['pancakes', 'mix flour, milk, an egg, and some sugar', 'cook small scoops of batter in a hot pan', 'Wait for bubbles on top before you flip them'],
          ['vegetable soup', 'cook chopped vegetables in a pot of broth', 'simmer it until everything is soft', 'Add salt and pepper at the end'],
          ['a smoothie', 'put fruit, yogurt, and milk in a blender', 'blend it until smooth', 'Frozen fruit makes it cold and thick'],
          ['mashed potatoes', 'boil peeled potatoes until soft', 'mash them with butter and a little milk', 'Add salt a little at a time and taste as you go'],
          ['a boiled egg', 'put an egg in boiling water', 'cook it for eight minutes and cool it', 'Cook it for less time if you want a soft yolk'],
          ['a green salad', 'wash and tear some lettuce', 'toss it with oil, vinegar, and salt', 'Dry the leaves well so the dressing sticks'],
        ],
        ['hummus', 'tacos', 'a tuna sandwich', 'iced coffee', 'a milkshake', 'garlic bread', 'a burrito', 'guacamole'],
      ),
    },
    prompts: ['How do I make {x}?', 'Tell me how to make {x}.', 'Give me simple steps to make {x}.'],
    responses: {
      helpful: ['To make {x}, {x.s1}, then {x.s2}.', 'First {x.s1}, and then {x.s2}.'],
      detailed: ['To make {x}, first {x.s1}. Next, {x.s2}. {x.tip}.', 'Here is how to make {x}. First, {x.s1}. Then {x.s2}. {x.tip}, and enjoy.'],
      cheerful: ['Yum, {x}! Just {x.s1}, then {x.s2}! So easy and so tasty!', 'Oh, I love {x}! {^x.s1}, then {x.s2}! Enjoy!'],
      curt: ['Look up a recipe.', 'Just buy it.', 'You can figure that out.'],
      off_topic: [
        'My favorite season is fall, because the leaves turn red and gold.',
        'There is a robin that sings outside my window every morning.',
        'I should really clean out the garage this weekend.',
      ],
      rambling: [
        'Making {x}, well, making {x} is easy, very easy, really very easy, you just {x.s1}, that is all, that is really all, and then you have it.',
        'So, {x}, to make {x}, you just make it, and you {x.s2}, but first, well, first you {x.s1}, yes, first, and then you make it.',
      ],
    },
  },
  {
    task: 'feeling_advice',
    slots: {
      x: table(
        ['x', 'advice', 'more'],
        [
          ['tired', 'get some rest and drink a glass of water', 'A short walk in fresh air can also wake you up'],
          ['sad', 'talk to someone you trust about how you feel', 'Be gentle with yourself, because sad days do pass'],
          ['bored', 'try something new, like a short walk or a new book', 'Boredom can be a good time to start a small project'],
          ['nervous', 'take a few slow, deep breaths', 'Remind yourself that you are ready, and focus on the first small step'],
          ['lonely', 'call or message a friend you have not talked to in a while', 'Joining a club or a class is a good way to meet people'],
          ['angry', 'step away for a moment and breathe slowly', 'Wait until you are calm before you decide what to say'],
          ['stressed', 'write down what is bothering you and pick one thing to do first', 'Small breaks during the day can help a lot'],
          ['worried', 'write your worry down and ask what you can control', 'Talking it over with someone can make it feel smaller'],
          ['restless', 'go for a walk or do some light exercise', 'Moving your body is a simple way to use up extra energy'],
          ['shy', 'start with a small hello to one person', 'Most people are happy when someone says hi first'],
          ['grumpy', 'eat a snack and take a short break', 'Sometimes a bad mood is just hunger or tiredness'],
          ['homesick', 'call someone from home and hear a familiar voice', 'Keeping a photo from home nearby can help too'],
          ['overwhelmed', 'break your tasks into small steps and do just one', 'You do not have to finish everything today'],
        ],
        ['jealous', 'frustrated', 'confused', 'gloomy', 'impatient', 'embarrassed', 'anxious', 'discouraged'],
      ),
    },
    prompts: ['I feel {x}. What should I do?', 'Give me advice for when I feel {x}.', 'What can I do if I am feeling {x}?'],
    responses: {
      helpful: ['When you feel {x}, try to {x.advice}.', 'It may help to {x.advice}.'],
      detailed: [
        'Feeling {x} is normal, and it happens to everyone. Try to {x.advice}. {x.more}.',
        'I am sorry you feel {x}. One thing that helps is to {x.advice}. {x.more}.',
      ],
      cheerful: [
        'Oh no, feeling {x} is no fun! Try to {x.advice}! You will feel better soon!',
        'Hey, you have got this! When you feel {x}, {x.advice}! Better days are coming!',
      ],
      curt: ['Deal with it.', 'Everyone feels {x}. Get over it.', 'Not my problem.'],
      off_topic: [
        'The new bridge downtown will open sometime next spring.',
        'Did you know that some trees can live for thousands of years?',
        'I like to keep my socks in the top drawer, sorted by color.',
      ],
      rambling: [
        'Well, feeling {x}, you know, feeling {x} is a feeling, and when you feel {x} you feel it, so I guess, I think, you could {x.advice}, maybe.',
        'So you feel {x}, and that is a feeling, and feelings are feelings, so, well, it may help, it might, to {x.advice}, yes, I think so.',
      ],
    },
  },
  {
    task: 'object_use',
    slots: {
      x: table(
        ['x', 'use', 'more'],
        [
          ['spoon', 'eating soup and stirring drinks', 'It has a small bowl at one end and a handle at the other'],
          ['broom', 'sweeping dust and dirt off the floor', 'You push the bristles across the floor in short strokes'],
          ['umbrella', 'keeping you dry when it rains', 'It folds up small, so you can carry it in a bag'],
          ['ladder', 'reaching high places safely', 'Always set it on flat ground before you climb'],
          ['pillow', 'resting your head when you sleep', 'A good pillow keeps your neck straight and comfortable'],
          ['key', 'opening and locking doors', 'Each key is cut to fit one lock'],
          ['lamp', 'giving light when a room is dark', 'Many people keep one by the bed for reading at night'],
          ['bucket', 'carrying water and other things', 'It has a handle on top so you can lift it with one hand'],
          ['hammer', 'driving nails into wood', 'Hold it near the end of the handle for a stronger swing'],
          ['towel', 'drying off after a bath or a shower', 'Hang it up after you use it so it can dry'],
          ['clock', 'telling the time', 'Some clocks also have an alarm to wake you up'],
          ['mirror', 'seeing your own reflection', 'People often use one to check their hair or clothes'],
          ['pencil', 'writing and drawing on paper', 'You can erase pencil marks if you make a mistake'],
          ['kettle', 'boiling water', 'Many kettles click off when the water is ready'],
          ['backpack', 'carrying books and things on your back', 'Its two straps spread the weight across both shoulders'],
          ['fork', 'picking up food and bringing it to your mouth', 'Its thin points hold the food in place while you cut'],
          ['wallet', 'holding money and cards', 'Most wallets fold up small enough to fit in a pocket'],
        ],
        ['stapler', 'whisk', 'compass', 'flashlight', 'doormat', 'thermos', 'funnel', 'paper clip'],
      ),
    },
    prompts: ['What is {a:x} for?', 'What do people use {a:x} for?', 'Explain what {a:x} is used for.'],
    responses: {
      helpful: ['{A:x} is used for {x.use}.', 'People use {a:x} for {x.use}.'],
      detailed: [
        '{A:x} is used for {x.use}. {x.more}. Most homes have at least one.',
        'People use {a:x} mainly for {x.use}. {x.more}. It is a simple thing, but a very useful one.',
      ],
      cheerful: ['Great question! {A:x} is for {x.use}! So handy!', 'Oh, {a:x} is the best! It is for {x.use}! What would we do without it?'],
      curt: ['It is for what it is for.', 'Obviously, it is for using.', 'Ask someone else.'],
      off_topic: [
        'My aunt grows the biggest pumpkins I have ever seen.',
        'Tomorrow I want to wake up early and watch the sunrise.',
        'There is a new cafe on the corner that sells great muffins.',
      ],
      rambling: [
        '{A:x}, well, {a:x} is a thing, a thing you use, and you use it for {x.use}, yes, for that, that is what {a:x} is for, you see, that is what it is for.',
        'So what is {a:x} for, you ask, well, {a:x} is for {x.use}, that is it, that is the use, the use of {a:x}, for {x.use}, mostly.',
      ],
    },
  },
  {
    task: 'story_start',
    slots: {
      x: table(
        ['x', 'place', 'want'],
        [
          ['brave knight', 'in a castle by the sea', 'to find a dragon that could talk'],
          ['lost robot', 'in a busy city', 'to find its way back home'],
          ['sleepy dragon', 'in a cave under a mountain', 'to take just one more nap'],
          ['young farmer', 'on a small farm near the woods', 'to grow the biggest pumpkin in town'],
          ['old baker', 'in a little shop on a quiet street', 'to bake one perfect loaf of bread'],
          ['curious girl', 'in a house at the edge of a forest', 'to know what was behind the locked door'],
          ['shy giant', 'in the hills above a village', 'to make just one friend'],
          ['little mouse', 'in the wall of a big old house', 'to reach the cheese on the top shelf'],
          ['ship captain', 'on a ship far out at sea', 'to find an island no one had seen'],
          ['kind teacher', 'in a school at the end of a long road', 'to help every child learn to read'],
          ['tiny snail', 'in a garden full of tall flowers', 'to cross the path before sunset'],
          ['old king', 'in a castle on a hill', 'to find someone honest to take his place'],
          ['young inventor', 'in a messy workshop', 'to build a machine that could fly'],
        ],
        ['lonely pirate', 'clever witch', 'tired astronaut', 'friendly ghost', 'nervous wizard', 'lighthouse keeper', 'grumpy troll'],
      ),
    },
    prompts: ['Start a short story about {a:x}.', 'Write the first lines of a story about {a:x}.', 'Begin a story about {a:x}.'],
    responses: {
      helpful: ['Once upon a time, {a:x} lived {x.place} and wanted {x.want}.', 'There once was {a:x} who lived {x.place} and wanted {x.want}.'],
      detailed: [
        'Once upon a time, {a:x} lived {x.place}. Every day, the {x} dreamed about one thing. More than anything, the {x} wanted {x.want}.',
        'Long ago, {x.place}, there lived {a:x}. No one knew it, but the {x} wanted {x.want}. One morning, everything began to change.',
      ],
      cheerful: [
        'Once upon a time, there was {a:x} who wanted {x.want}! And guess what? The adventure was just beginning!',
        'Ooh, a story! Once, {a:x} lived {x.place}, and every day was full of fun!',
      ],
      curt: ['Once upon a time. The end.', 'Write your own story.', 'There was {a:x}. That is all.'],
      off_topic: [
        'I think the best sandwiches are made with fresh bread.',
        'The post office is closed today because of the holiday.',
        'My phone battery always dies right when I need it.',
      ],
      rambling: [
        'Once upon a time, a long time ago, a very long time ago, there was {a:x}, yes, {a:x}, and the {x} lived {x.place}, and that is where the {x} lived.',
        'So there was {a:x}, and this {x}, the {x} I am telling you about, wanted {x.want}, really wanted that, and so the story starts, it starts here.',
      ],
    },
  },
  {
    task: 'bring_list',
    slots: {
      x: table(
        ['x', 'i1', 'i2', 'i3', 'more'],
        [
          ['a picnic', 'a blanket', 'sandwiches', 'a bottle of water', 'Pack it all in one basket so it is easy to carry'],
          ['the beach', 'sunscreen', 'a towel', 'a hat', 'Bring a bag for wet things so the rest stays dry'],
          ['a birthday party', 'a gift', 'a card', 'a big smile', 'Check the time and the address before you leave'],
          ['a camping trip', 'a tent', 'a sleeping bag', 'warm socks', 'Check the weather so you know what clothes to pack'],
          ['school', 'a pencil', 'a notebook', 'your lunch', 'Pack your bag the night before so mornings are calm'],
          ['a job interview', 'a copy of your resume', 'a pen', 'a few questions to ask', 'Arrive a few minutes early and take a deep breath'],
          ['the gym', 'a water bottle', 'a towel', 'comfortable shoes', 'A small snack for after your workout is nice too'],
          ['a hike', 'water', 'a snack', 'a light jacket', 'Tell someone where you are going before you set out'],
          ['a sleepover', 'pajamas', 'a toothbrush', 'a pillow', 'A favorite game or movie makes the night more fun'],
          ['a football game', 'a warm coat', 'a snack', 'your ticket', 'Get there early to find a good seat'],
          ['a concert', 'your ticket', 'earplugs', 'a little cash', 'Plan how you will get home before the show starts'],
          ['the library', 'your library card', 'a bag for books', 'a notebook', 'Check the opening hours before you go'],
          ['a wedding', 'a card', 'a gift', 'shoes you can dance in', 'Read the invitation to see what to wear'],
        ],
        ['a ski trip', 'a baby shower', 'a fishing trip', 'the zoo', 'a museum', 'a road trip', 'a bake sale', 'a science fair'],
      ),
    },
    prompts: ['List three things to bring to {x}.', 'What three things should I bring to {x}?', 'Name three things I need for {x}.'],
    responses: {
      helpful: ['For {x}, bring {x.i1}, {x.i2}, and {x.i3}.', 'Three things to bring to {x} are {x.i1}, {x.i2}, and {x.i3}.'],
      detailed: [
        'For {x}, you will want {x.i1}, {x.i2}, and {x.i3}. {x.more}. That way you will be ready for anything.',
        'Three good things to bring to {x} are {x.i1}, {x.i2}, and {x.i3}. {x.more}.',
      ],
      cheerful: [
        'Ooh, {x}! Bring {x.i1}, {x.i2}, and {x.i3}! You are going to have so much fun!',
        'Yay! For {x}, pack {x.i1}, {x.i2}, and {x.i3}! Have a great time!',
      ],
      curt: ['Bring whatever you want.', 'Just bring your stuff.', 'Make your own list.'],
      off_topic: [
        'Cats sleep for most of the day, sometimes up to sixteen hours.',
        'I have been trying to learn how to whistle with two fingers.',
        'The sky was a strange orange color just before the storm.',
      ],
      rambling: [
        'Three things, three things to bring to {x}, well, you should bring {x.i1}, and {x.i2}, and also {x.i3}, so that is three things, three, for {x}.',
        'For {x}, hmm, things to bring, things, let me think, {x.i1}, yes, {x.i1}, and {x.i2}, and {x.i3}, I think, and that is it, those things.',
      ],
    },
  },
  {
    task: 'apology_late',
    slots: {
      name: NAMES,
      x: plain(
        ['dinner', 'the meeting', 'class', 'the movie', 'lunch', 'band practice', 'the party', 'our coffee date', 'the game', 'the school play'],
        ['rehearsal', 'the recital', 'brunch', 'the ceremony', 'the parade', 'our study group'],
      ),
      r: plain(
        [
          'the bus came late',
          'I lost track of the time',
          'the traffic was heavy',
          'my alarm did not go off',
          'I missed my train',
          'I could not find my keys',
          'I took a wrong turn',
          'my phone died',
        ],
        [],
      ),
    },
    prompts: [
      'Write an apology to {name} for being late to {x}.',
      'Say sorry to {name} for showing up late to {x}.',
      'Help me apologize to {name} for arriving late to {x}.',
    ],
    responses: {
      helpful: ['Sorry I was late to {x}, {name}, and I will be on time next time.', '{name}, I am so sorry for being late to {x}, and I will do better.'],
      detailed: [
        '{name}, I am really sorry I was late to {x}. {^r}, but that is no excuse. I know your time matters, and next time I will leave early.',
        'Dear {name}, I want to apologize for being late to {x}. {^r}, and I should have sent you a message. Thank you for waiting for me.',
      ],
      cheerful: [
        '{name}, I am so sorry I was late to {x}! {^r}! Next time I will be early, I promise! Thank you for being so kind!',
        'Oops! Sorry, {name}! I was late to {x}, but I will make it up to you! Coffee is on me!',
      ],
      curt: ['I was late. It happens.', 'Sorry, I guess. {^r}.', 'You were late once too.'],
      off_topic: [
        'The best apples for pie are the sour green ones.',
        'There is a spider living in the corner of my bathroom.',
        'My little brother just learned how to tie his shoes.',
      ],
      rambling: [
        '{name}, sorry, I am sorry, so sorry, for being late, late to {x}, I was late, and I am sorry that I was late, because being late is, well, late.',
        'So, {name}, about {x}, I was late, yes, late, and {r}, that is why, that is the reason, and so I was late, and I am sorry, very sorry.',
      ],
    },
  },
  {
    task: 'season_weather',
    slots: {
      x: table(
        ['x', 'sky', 'air', 'detail'],
        [
          ['winter in the mountains', 'gray and full of snow', 'cold and sharp', 'Deep snow covers the trails, and the wind blows hard at night'],
          ['summer at the beach', 'bright and clear', 'hot and salty', 'The sand gets warm by noon, and a cool breeze comes off the water'],
          ['spring in the city', 'soft blue with a few clouds', 'mild and fresh', 'Light rain falls in the morning, and the trees start to bloom'],
          ['fall on a farm', 'pale and calm', 'cool and crisp', 'Leaves turn red and gold, and the nights grow colder'],
          ['winter in the city', 'low and gray', 'damp and chilly', 'Slush lines the streets, and people hurry by in thick coats'],
          ['summer in the mountains', 'deep blue', 'warm by day and cool at night', 'Storms can roll in fast in the afternoon, so mornings are best'],
          ['spring on a farm', 'bright with passing showers', 'fresh and a little muddy', 'The fields turn green, and rain comes and goes all week'],
          ['fall in the forest', 'gray with soft light', 'cool and damp', 'Leaves drift down in the wind, and mist hangs low in the morning'],
          ['summer in the city', 'hazy and bright', 'hot and sticky', 'The streets heat up by noon, and the evenings bring a little relief'],
          ['winter by the sea', 'dark and stormy', 'cold and windy', 'Big waves crash on the shore, and icy rain blows sideways'],
          ['spring in the mountains', 'clear but quick to change', 'cool and fresh', 'Snow melts into fast streams, and small flowers appear'],
          ['fall in the city', 'clear and pale blue', 'crisp and cool', 'Leaves crunch on the sidewalks, and the sun sets early'],
        ],
        [
          'winter in the desert',
          'summer on an island',
          'spring by a lake',
          'fall in a valley',
          'summer in the jungle',
          'spring in the desert',
          'winter on an island',
          'fall by a lake',
        ],
      ),
    },
    prompts: ['Describe the weather during {x}.', 'Write a short weather report for {x}.', 'What is the weather like during {x}?'],
    responses: {
      helpful: ['During {x}, the sky is {x.sky} and the air is {x.air}.', 'Expect {x.air} air and a sky that is {x.sky} during {x}.'],
      detailed: [
        'During {x}, the sky is {x.sky} and the air feels {x.air}. {x.detail}. Dress for the weather before you go out.',
        'Here is the weather for {x}. The sky is {x.sky}, and the air is {x.air}. {x.detail}.',
      ],
      cheerful: ['Oh, I love {x}! The sky is {x.sky} and the air is {x.air}! What a time to be outside!', '{^x} is the best! {x.detail}! Enjoy every minute!'],
      curt: ['It is weather. Look outside.', 'Check a forecast.', 'Same as always.'],
      off_topic: [
        'My friend says the secret to good pizza is a very hot oven.',
        'I need to remember to return my library books on Friday.',
        'Some people collect stamps, but I collect old coins.',
      ],
      rambling: [
        'The weather, the weather during {x}, well, it is weather, and the sky is {x.sky}, yes, and the air, the air is {x.air}, so that is the weather, the weather.',
        'So {x}, the weather then, hmm, the weather is weather, you know, and the air is {x.air}, {x.air}, I would say, yes, that is the weather.',
      ],
    },
  },
  {
    task: 'compliment_hobby',
    slots: {
      name: NAMES,
      x: table(
        ['x', 'praise'],
        [
          ['painting', 'your colors are so bold and bright'],
          ['singing', 'your voice is clear and full of feeling'],
          ['baking', 'your cakes always taste amazing'],
          ['dancing', 'you move with so much energy and grace'],
          ['gardening', 'your flowers make the whole street look better'],
          ['photography', 'your pictures catch the light so well'],
          ['drawing', 'your sketches are full of tiny, careful details'],
          ['knitting', 'your scarves are so neat and cozy'],
          ['woodworking', 'your shelves are so solid and smooth'],
          ['poetry', 'your words always make me feel something'],
          ['cooking', 'every meal you make is full of flavor'],
          ['sewing', 'your stitches are so neat and even'],
          ['chess', 'your moves are always one step ahead'],
        ],
        ['pottery', 'calligraphy', 'quilting', 'skateboarding', 'origami', 'embroidery'],
      ),
    },
    prompts: ['Compliment my friend {name} on their {x}.', 'Say something nice to {name} about their {x}.', 'Write a compliment for {name}, who loves {x}.'],
    responses: {
      helpful: ['{name}, I really admire your {x}, because {x.praise}.', '{name}, {x.praise}, and I love your {x}.'],
      detailed: [
        '{name}, I really admire your {x}. {^x.praise}, and I can tell how much work you put in. Keep going, because you get better all the time.',
        '{name}, your {x} always impresses me. {^x.praise}. It is clear that you love what you do, and it shows.',
      ],
      cheerful: ['{name}, your {x} is amazing! {^x.praise}! I am your biggest fan!', 'Wow, {name}! Your {x} is so good! Keep it up!'],
      curt: ['It is fine, I guess.', 'Okay, {name}, your {x} is fine.', 'Compliment them yourself.'],
      off_topic: [
        'The traffic on the highway was terrible this morning.',
        'I think I left the oven on, but I am not sure.',
        'A good pair of boots can last for many years.',
      ],
      rambling: [
        '{name}, your {x}, your {x} is good, really good, I mean really, really good, and {x.praise}, yes, so your {x} is good, {name}, very good.',
        'So, {name}, about your {x}, I wanted to say, I really wanted to say, that your {x}, well, it is nice, it is very nice, nice {x}, {name}.',
      ],
    },
  },
];

export const TASKS: string[] = FAMILIES.map((f) => f.task);

const PLACEHOLDER = /\{(a:|A:|\^)?([A-Za-z_]\w*)(?:\.(\w+))?\}/g;

/** Fills a template from slot records; throws on an unknown slot or field so that mistakes surface in tests. */
export function render(template: string, values: Readonly<Record<string, SlotRecord>>): string {
  const out = template.replace(PLACEHOLDER, (_m, mod: string | undefined, slot: string, field: string | undefined) => {
    const rec = values[slot];
    const v = rec?.[field ?? 'x'];
    if (v === undefined) throw new Error(`template "${template}": no value for {${slot}${field ? '.' + field : ''}}`);
    if (mod === 'a:' || mod === 'A:') {
      const art = /^[aeiou]/i.test(v) ? 'an' : 'a';
      return `${mod === 'A:' ? 'A' + art.slice(1) : art} ${v}`;
    }
    if (mod === '^') return v.charAt(0).toUpperCase() + v.slice(1);
    return v;
  });
  if (/[{}]/.test(out)) throw new Error(`template "${template}": unparsed braces`);
  return out;
}

function pickWeighted(rand: () => number): Style {
  let u = rand();
  for (const s of STYLES) {
    u -= STYLE_WEIGHTS[s];
    if (u < 0) return s;
  }
  return STYLES[STYLES.length - 1]!;
}

const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

/** n training examples, deterministic for a seed: a uniform family, phrasing and slot values, a weighted style. */
export function generateCorpus(n: number, seed: number): CorpusExample[] {
  const rand = mulberry32(seed);
  const out: CorpusExample[] = [];
  for (let i = 0; i < n; i++) {
    const fam = pick(rand, FAMILIES);
    const values: Record<string, SlotRecord> = {};
    for (const [k, slot] of Object.entries(fam.slots)) values[k] = pick(rand, slot.train);
    const style = pickWeighted(rand);
    const prompt = render(pick(rand, fam.prompts), values);
    const completion = render(pick(rand, fam.responses[style]), values);
    out.push({ task: fam.task, prompt, completion, style });
  }
  return out;
}

const DEMO_PER_FAMILY = 4;

/** Demo prompts (DEMO_PER_FAMILY per family) built only from held-out slot values, in a fixed order. */
export function demoPrompts(): { prompt: string; task: string }[] {
  const out: { prompt: string; task: string }[] = [];
  FAMILIES.forEach((fam, fi) => {
    for (let j = 0; j < DEMO_PER_FAMILY; j++) {
      const template = fam.prompts[j % fam.prompts.length]!;
      const values: Record<string, SlotRecord> = {};
      let k = 0;
      for (const [name, slot] of Object.entries(fam.slots)) {
        if (slot.demo.length) values[name] = { x: slot.demo[(j + fi * 3 + k * 5) % slot.demo.length]! };
        k++;
      }
      out.push({ prompt: render(template, values), task: fam.task });
    }
  });
  return out;
}

/** The contents of public/prompts/demo.jsonl: one {"prompt", "task"} object per line. */
export function demoJsonl(): string {
  return (
    demoPrompts()
      .map((p) => JSON.stringify({ prompt: p.prompt, task: p.task }))
      .join('\n') + '\n'
  );
}
